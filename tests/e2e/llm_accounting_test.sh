#!/usr/bin/env bash
# End-to-end: response accounting on a live aiqosd. A streaming server (tests/pcap/capture/server.js)
# in the testbed answers with its headers at once, its first token 300 ms later, then 20 tokens
# 50 ms apart and a usage chunk; curl asks over h2c and over HTTP/1.1 through aiqosd. Every
# request's log line must show ttft_ms and tpot_ms within 10% of what the server logged it sent,
# output_tokens 20 with token_source usage; the Prometheus TTFT histogram must hold them in the
# le=0.5 bucket and not in le=0.25, and TPOT in le=0.075 and not in le=0.025.
# Exit 0 pass, 1 fail, 77 skip (not root).
# usage: llm_accounting_test.sh AIQOSD
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 1 1 "$@"
AIQOSD=$(realpath "$1")
e2e_testbed llm_accounting aqa

tb_up || { fail "testbed"; exit 1; }
EXP_PORT=9473
LOG=$TB_DIR/requests.jsonl
tb_start_aiqosd "$AIQOSD" --policy "$REPO/config/aiqos.yaml" --ctl-socket none \
	--prometheus "127.0.0.1:$EXP_PORT" --request-log "$LOG" || { fail "aiqosd did not start"; exit 1; }
tb_srv node "$REPO/tests/pcap/capture/server.js" --host "$TB_SRV_IP" --h2c 8080 --h1 8081 \
	--log "$TB_DIR/timing.jsonl" >"$TB_DIR/server.log" 2>&1 </dev/null &
BG_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
	tb_srv curl -s -o /dev/null --max-time 1 "http://$TB_SRV_IP:8081/healthz" 2>/dev/null && break
	sleep 0.1
done

body='{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,"messages":[{"role":"user","content":"Count to twenty."}]}'
t=(-sS -N --max-time 20 -o /dev/null -w '%{http_code}\n' -H 'x-aiqos-timing: 300/50' -H 'content-type: application/json' --data "$body")
for proto in h2 h1; do
	for n in 1 2; do
		if [[ $proto == h2 ]]; then
			code=$(tb_cli curl --http2-prior-knowledge "${t[@]}" "http://$TB_SRV_IP:8080/v1/chat/completions")
		else
			code=$(tb_cli curl --http1.1 "${t[@]}" "http://$TB_SRV_IP:8081/v1/chat/completions")
		fi
		[[ $code == 200 ]] || fail "$proto request $n: HTTP $code"
	done
done
sleep 1
tb_dut curl -sf --max-time 5 "http://127.0.0.1:$EXP_PORT/metrics" >"$TB_DIR/metrics.txt" ||
	fail "aiqosd /metrics did not answer"
tb_stop_aiqosd || fail "aiqosd exit status $?"

PYTHONPATH=$HERE python3 - "$LOG" "$TB_DIR/timing.jsonl" "$TB_DIR/metrics.txt" <<'PY' || FAILS=$((FAILS + 1))
import json, re, sys
log = [json.loads(l) for l in open(sys.argv[1])]
srv = [json.loads(l) for l in open(sys.argv[2])]
metrics = open(sys.argv[3]).read()
from e2e_check import check, verdict
check(len(log) == 4 and len(srv) == 4, f"4 requests logged ({len(log)}) and served ({len(srv)})")
for s in srv:
    r = [x for x in log if x["sport"] == s["sport"] and (s["stream_id"] is None or x["stream_id"] == s["stream_id"])]
    if not r:
        check(False, f"no log line for port {s['sport']}")
        continue
    r = r[0]
    what = f"{r['proto']} port {r['sport']}: ttft {r['ttft_ms']} ms (server {s['ttft_ms']:.1f}), " \
           f"tpot {r['tpot_ms']} ms (server {s['tpot_ms']:.1f}), output {r['output_tokens']} ({r['token_source']})"
    check(r["ttft_ms"] is not None and abs(r["ttft_ms"] - s["ttft_ms"]) <= 0.1 * s["ttft_ms"] and
          r["tpot_ms"] is not None and abs(r["tpot_ms"] - s["tpot_ms"]) <= 0.1 * s["tpot_ms"] and
          r["output_tokens"] == 20 and r["token_source"] == "usage" and r["input_tokens"] == 9 and
          abs(r["ttft_ms"] - 300) <= 30 and abs(r["tpot_ms"] - 50) <= 5, what)
def bucket(name, le):
    return sum(float(m.group(1)) for m in re.finditer(
        r'^%s_bucket\{[^}]*gen_ai_request_model="gpt-4o-mini"[^}]*le="%s"\} (\S+)$' % (name, re.escape(le)), metrics, re.M))
ttft = "gen_ai_server_time_to_first_token_seconds"
tpot = "gen_ai_server_time_per_output_token_seconds"
check(bucket(ttft, "0.25") == 0 and bucket(ttft, "0.5") == 4,
      f"TTFT histogram: le=0.25 {bucket(ttft, '0.25'):.0f}, le=0.5 {bucket(ttft, '0.5'):.0f} (want 0, 4)")
check(bucket(tpot, "0.025") == 0 and bucket(tpot, "0.075") == 4,
      f"TPOT histogram: le=0.025 {bucket(tpot, '0.025'):.0f}, le=0.075 {bucket(tpot, '0.075'):.0f} (want 0, 4)")
check(re.search(r'^gen_ai_client_token_usage_sum\{[^}]*gen_ai_token_type="output"[^}]*\} 80$', metrics, re.M) is not None,
      "gen_ai_client_token_usage output sum 80")
sys.exit(verdict())
PY
