#!/usr/bin/env bash
# End-to-end mid-stream pickup (issue 13): aiqosd (af_packet in the testbed, config/aiqos.yaml) is
# restarted while 20 long-lived h2c connections (node's http2, tests/e2e/midstream/client.js) keep
# sending chat requests, the model named in the JSON body after the messages. The restarted
# aiqosd never saw those connections' handshakes, prefaces, SETTINGS or HPACK tables.
#   - at least 95% of the requests sent on them after the restart are in the new request log with
#     the model the client sent and the class the policy gives that model, pickup "midstream";
#   - 0 records name another model or another class;
#   - new connections opened after the restart are classified as usual.
# Needs root. Exit 0 = pass, 1 = fail, 77 = skipped (meson's SKIP).
#
# usage: midstream_test.sh AIQOSD_BIN
# Environment: AIQOS_E2E_OUT (logs; default tests/e2e/out), AIQOS_KEEP_LOGS=1, AIQOS_TB_PREFIX.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 1 1 "$@"
AIQOSD=$(realpath "$1")
e2e_need node curl ethtool /usr/bin/python3
e2e_testbed midstream aqms

POLICY="$REPO/config/aiqos.yaml"
CONNS=20
PERIOD_MS=250  # 80 requests/s in all: under the standard class's 100 requests/s budget
DURATION_S=14
now_s() { echo "${EPOCHREALTIME/,/.}"; }

tb_up
tb_start_h2c_server node
tb_start_aiqosd "$AIQOSD" --policy "$POLICY" --request-log "$TB_DIR/before.jsonl"
tb_cli node "$HERE/midstream/client.js" "http://$TB_SRV_IP:$TB_PORT" "$CONNS" "$PERIOD_MS" "$DURATION_S" \
	>"$TB_DIR/client.jsonl" 2>"$TB_DIR/client.err" &
CLIENT=$!
BG_PIDS+=("$CLIENT")
sleep 4
tb_stop_aiqosd || fail "the first aiqosd did not exit cleanly"
mv "$TB_DIR/aiqosd.log" "$TB_DIR/aiqosd.before.log"
T_DOWN=$(now_s)
tb_start_aiqosd "$AIQOSD" --policy "$POLICY" --request-log "$TB_DIR/after.jsonl"
T_UP=$(now_s)
info "aiqosd was down for $(awk -v a="$T_DOWN" -v b="$T_UP" 'BEGIN { printf "%.2f", b - a }') s"
sleep 3
# A connection opened after the restart: its handshake is seen, it is classified as usual.
code=$(tb_cli curl -sS --max-time 10 --http2-prior-knowledge -o /dev/null -w '%{http_code}' \
	-H 'content-type: application/json' -H 'x-request-id: fresh' \
	-d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' \
	"http://$TB_SRV_IP:$TB_PORT/v1/chat/completions?fresh=1" 2>>"$TB_DIR/client.err") || true
[[ $code == 200 ]] || fail "a new connection after the restart got HTTP ${code:-none}"
wait "$CLIENT" || true
BG_PIDS=()
sleep 1
tb_stop_aiqosd || fail "the restarted aiqosd did not exit cleanly"

if /usr/bin/python3 - "$TB_DIR/client.jsonl" "$TB_DIR/after.jsonl" "$T_UP" <<'PY'; then
import json, sys
client_log, after_log, t_up = sys.argv[1], sys.argv[2], float(sys.argv[3])
# config/aiqos.yaml: chat-premium (gpt-4o*) -> interactive, chat-open-models (llama-3.N) -> standard.
want_class = {"gpt-4o-mini": "interactive", "llama-3.1-8b-instruct": "standard", "mistral-small-latest": "default"}
sent = [json.loads(l) for l in open(client_log) if l.strip()]
ports = {r["sport"] for r in sent}
after = [json.loads(l) for l in open(after_log) if l.strip()]
by_key = {(r["sport"], r["stream_id"]): r for r in after if r["dport"] == 8080}
late = [r for r in sent if r["t0"] > t_up + 0.05 and r["status"] == 200]
right = wrong = absent = 0
for r in late:
    rec = by_key.get((r["sport"], r["stream_id"]))
    if rec is None:
        absent += 1
        continue
    if rec["model"] == r["model"] and rec["class"] == want_class[r["model"]]:
        right += 1
    elif rec["model"] is None:
        absent += 1  # not classified: not wrong
    else:
        wrong += 1
        print(f"WRONG: sent {r['model']} on port {r['sport']} stream {r['stream_id']}, logged {rec['model']} / {rec['class']}")
# Any record on the old connections must agree with what was sent.
sent_by_key = {(r["sport"], r["stream_id"]): r for r in sent}
for rec in after:
    s = sent_by_key.get((rec["sport"], rec["stream_id"]))
    if s is None or rec["model"] is None or s["t0"] > t_up + 0.05:
        continue
    if rec["model"] != s["model"] or rec["class"] != want_class[s["model"]]:
        wrong += 1
        print(f"WRONG (before the restart): sent {s['model']}, logged {rec['model']} / {rec['class']}")
midstream = sum(1 for r in after if r["sport"] in ports and r.get("pickup") == "midstream")
fresh = [r for r in after if (r["path"] or "").endswith("?fresh=1")]
print(f"{len(sent)} requests answered, {len(late)} sent after the restart on {len(ports)} connections "
      f"open across it: {right} right, {wrong} wrong, {absent} not classified; "
      f"{midstream} records say pickup midstream")
ok = len(late) >= 100 and right >= 0.95 * len(late) and wrong == 0 and midstream >= right
if len(fresh) != 1 or fresh[0]["class"] != "interactive" or fresh[0].get("pickup") is not None:
    print(f"the connection opened after the restart: {fresh}")
    ok = False
sys.exit(0 if ok else 1)
PY
	pass "connections open across the restart are classified (>= 95% right, 0 wrong)"
else
	fail "connections open across the restart"
fi
