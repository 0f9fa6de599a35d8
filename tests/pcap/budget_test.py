#!/usr/bin/python3
"""Request and token budgets, through offline mode on real captures.

  requests per second: h2c_h2load holds 200 gpt-4o requests in ~77 ms; a class allowed
    20 requests/s (burst 20) with exceed: demote lets ~20 through and demotes the rest
  token budget: h2c_multiplex_node, 600 tokens/minute for the non-chat endpoints with
    action: drop: requests beyond the budget are marked dropped, and their client frames
    are dropped (counted as over_budget on the egress port)

usage: budget_test.py AIQOSD
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pcaplib import report, run_offline  # noqa: E402

POLICY = """\
version: 1
classes:
  - name: chat
    priority: 1
    requests_per_second: 20
    exceed: demote
    demote_to: slow
  - name: tok
    priority: 2
    token_budget: {tokens_per_minute: 600, per: class, action: drop}
  - name: slow
    priority: 6
  - name: default
    priority: 7
rules:
  - match: {endpoint: chat_completions}
    class: chat
  - match: {endpoint: [completions, embeddings, anthropic_messages, ollama_chat, responses]}
    class: tok
"""


def run(aiqosd, case, work):
    policy = os.path.join(work, "policy.yaml")
    with open(policy, "w") as f:
        f.write(POLICY)
    r = run_offline(aiqosd, os.path.join(HERE, "cases", case, "in.pcap"), work, case, ["--policy", policy])
    return r.records(), r.stats


def main():
    aiqosd = sys.argv[1]
    fails = []
    with tempfile.TemporaryDirectory(prefix="aiqos-budget.") as work:
        recs, st = run(aiqosd, "h2c_h2load", work)
        chat = [r for r in recs if r["class"] == "chat"]
        demoted = [r for r in recs if r["budget"] == "demoted"]
        k = st["workers"][0]["classifier"]
        print(f"requests/s: {len(recs)} requests, {len(chat)} in chat, {len(demoted)} demoted to slow; "
              f"over_rps {k['over_rps']}, budget_demoted {k['budget_demoted']}")
        if len(recs) != 200:
            fails.append(f"expected 200 requests, got {len(recs)}")
        if not 18 <= len(chat) <= 24:
            fails.append(f"20 requests/s (burst 20) over ~77 ms should let ~20 through, got {len(chat)}")
        if any(r["class"] != "slow" for r in demoted) or len(chat) + len(demoted) != len(recs):
            fails.append("every request over the rate must be demoted to slow")
        if k["over_rps"] != len(demoted) or k["budget_demoted"] != len(demoted):
            fails.append("over_rps and budget_demoted must count the demoted requests")

        recs, st = run(aiqosd, "h2c_multiplex_node", work)
        tok = [r for r in recs if r["class"] == "tok"]
        dropped = [r for r in tok if r["budget"] == "dropped"]
        charged = sum(r["est_tokens"] or 0 for r in tok if r["budget"] is None)
        k = st["workers"][0]["classifier"]
        frames_dropped = sum(p["drops"].get("over_budget", 0) for p in st["ports"])
        print(f"tokens: {len(tok)} requests in tok, {len(dropped)} dropped, {charged} tokens let through; "
              f"over_tokens {k['over_tokens']}, frames dropped {frames_dropped}")
        if not dropped:
            fails.append("a 600 tokens/minute budget must drop some of these requests")
        if charged > 600:
            fails.append(f"{charged} tokens let through a 600-token budget")
        if any(r["est_tokens"] is None for r in tok):
            fails.append("every tok request must carry its token estimate")
        if k["over_tokens"] != len(dropped) or k["budget_dropped"] != len(dropped):
            fails.append("over_tokens and budget_dropped must count the dropped requests")
        if frames_dropped == 0 or frames_dropped != k["budget_frames_dropped"]:
            fails.append("the dropped requests' client frames must be dropped and counted")
        if sum(p["rx_packets"] for p in st["ports"]) != sum(p["tx_packets"] for p in st["ports"]) + frames_dropped:
            fails.append("every frame is either sent or counted as dropped")
    return report(fails)


if __name__ == "__main__":
    sys.exit(main())
