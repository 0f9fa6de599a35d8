#!/usr/bin/env bash
# End-to-end: h2c LLM-API traffic from a client namespace through aiqosd (af_packet on two veths)
# to a server namespace. Needs root. Exit 0 = pass, 1 = fail, 77 = skipped (meson's SKIP).
#
# usage: h2c_bridge_test.sh AIQOSD_BIN
#        h2c_bridge_test.sh --standin bridge|testpmd     (checks the harness itself; no aiqosd)
#
# Environment: AIQOS_E2E_REQUESTS (default 20000), AIQOS_E2E_OUT (logs; default
# tests/e2e/out), AIQOS_KEEP_LOGS=1 (keep logs after a pass), AIQOS_E2E_MBUF_LEAK_OK=1
# (mbufs_in_use_at_exit != 0 is a WARN, not a FAIL), AIQOS_TB_PREFIX (namespace prefix).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 1 2 "$@"
STANDIN=
AIQOSD=
case $1 in
--standin) STANDIN=${2:?--standin needs bridge or testpmd} ;;
*) AIQOSD=$(realpath "$1") ;;
esac

REQUESTS=${AIQOS_E2E_REQUESTS:-20000}
DL_BYTES=$((5 * 1024 * 1024))
URL="http://198.18.0.2:8080"
e2e_testbed h2c_bridge aq
e2e_before_exit() { rm -f "$TB_DIR/download.bin"; }

# ---- testbed and device under test ----
tb_up || { fail "testbed set-up"; exit 1; }
case $STANDIN in
bridge) dut_start=(tb_start_bridge) ;;
testpmd) dut_start=(tb_start_testpmd) ;;
'') dut_start=(tb_start_aiqosd "$AIQOSD" --stats-interval 0 --stats-json "$TB_DIR/stats.json") ;;
*) fail "unknown stand-in $STANDIN"; exit 1 ;;
esac
"${dut_start[@]}" || { fail "dut start-up: no IPv4 ping cli->srv through it"; exit 1; }
pass "IPv4 ping cli->srv through the dut (ARP resolved through it, no static entries)"
tb_start_h2c_server node || { fail "h2c server start-up"; exit 1; }

if tb_cli ping -c3 -i0.2 -W1 -q "$TB_SRV_IP6" >"$TB_DIR/ping6.log" 2>&1; then
	pass "IPv6 ping cli->srv (neighbour discovery through the dut)"
else
	fail "IPv6 ping cli->srv: $(tail -n2 "$TB_DIR/ping6.log" | tr '\n' ' ')"
fi

# ---- curl: one request per API shape ----
# check_json FILE MODEL KIND: the body parses, is OpenAI-shaped, and names MODEL.
check_json() {
	python3 - "$@" <<'PY'
import json, sys
path, model, kind = sys.argv[1:4]
raw = open(path, encoding="utf-8").read()
if kind == "sse":
    events = [l[6:] for l in raw.splitlines() if l.startswith("data: ")]
    assert events and events[-1] == "[DONE]", "stream must end with data: [DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == model for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text, "empty streamed text"
else:
    d = json.loads(raw)
    assert d["model"] == model, f"model {d.get('model')!r} != {model!r}"
    if kind == "chat":
        assert d["object"] == "chat.completion" and d["choices"][0]["message"]["content"]
    else:
        assert d["object"] == "list" and d["data"][0]["object"] == "embedding"
PY
}

curl_case() { # name path model kind body
	local name=$1 path=$2 model=$3 kind=$4 body=$5 code
	code=$(tb_cli curl -sS --max-time 10 --http2-prior-knowledge -o "$TB_DIR/curl.$name.out" \
		-w '%{http_code} %{http_version}' -H 'content-type: application/json' -d "$body" \
		"$URL$path" 2>"$TB_DIR/curl.$name.err") || true
	if [[ $code != "200 2" ]]; then
		fail "curl $name: got '$code' (want HTTP/2 200) $(head -c 200 "$TB_DIR/curl.$name.err")"
	elif ! check_json "$TB_DIR/curl.$name.out" "$model" "$kind" 2>"$TB_DIR/curl.$name.check"; then
		fail "curl $name: bad response: $(tail -n1 "$TB_DIR/curl.$name.check")"
	else
		pass "curl $name: HTTP/2 200, $kind response for model $model"
	fi
}

curl_case chat-gpt4o /v1/chat/completions gpt-4o chat \
	'{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
curl_case chat-llama /v1/chat/completions llama-3.1-8b-instruct chat \
	'{"model":"llama-3.1-8b-instruct","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is QoS?"}]}'
curl_case chat-stream /v1/chat/completions gpt-4o sse \
	'{"model":"gpt-4o","stream":true,"max_tokens":32,"messages":[{"role":"user","content":"Stream please"}]}'
curl_case embeddings /v1/embeddings text-embedding-3-small embedding \
	'{"model":"text-embedding-3-small","input":["first text","second text"]}'

# ---- h2load: many concurrent streams ----
printf '%s' '{"model":"llama-3.1-8b-instruct","messages":[{"role":"user","content":"Summarise the plot of Hamlet in one sentence."}],"max_tokens":24}' \
	>"$TB_DIR/body.json"
h2_rc=0
timeout 180 ip netns exec "$TB_NS_CLI" h2load -n "$REQUESTS" -c 10 -m 10 -T 60 \
	-H 'content-type: application/json' -d "$TB_DIR/body.json" "$URL/v1/chat/completions" \
	>"$TB_DIR/h2load.log" 2>&1 || h2_rc=$?
if ! tb_parse_h2load "$TB_DIR/h2load.log"; then
	fail "h2load: no summary line (exit $h2_rc); see $TB_DIR/h2load.log"
elif [[ $H2_SUCCEEDED == "$REQUESTS" && $H2_FAILED == 0 && $H2_ERRORED == 0 && $H2_TIMEOUT == 0 &&
	$H2_2XX == "$REQUESTS" ]]; then
	pass "h2load -n $REQUESTS -c 10 -m 10: $H2_SUCCEEDED succeeded, 0 failed, 0 errored, ${H2_REQPS} req/s in ${H2_FINISHED_S}s"
else
	fail "h2load: succeeded $H2_SUCCEEDED/$REQUESTS failed $H2_FAILED errored $H2_ERRORED timeout $H2_TIMEOUT 2xx ${H2_2XX:-?} (exit $h2_rc)"
fi

# ---- 5 MB download, byte-exact ----
want=$(tb_gen_bytes "$DL_BYTES" | sha256sum | cut -d' ' -f1)
t0=$(date +%s.%N)
dl=$(tb_cli curl -sS --max-time 60 --http2-prior-knowledge -o "$TB_DIR/download.bin" \
	-w '%{http_code} %{size_download} %{time_total} %{speed_download}' "$URL/download/$DL_BYTES" \
	2>"$TB_DIR/curl.download.err") || true
t1=$(date +%s.%N)
read -r dl_code dl_size dl_time dl_speed <<<"${dl:-0 0 0 0}"
got=$(sha256sum "$TB_DIR/download.bin" 2>/dev/null | cut -d' ' -f1 || true)
if [[ $dl_code == 200 && $dl_size == "$DL_BYTES" && $got == "$want" ]]; then
	pass "download $DL_BYTES bytes byte-exact (sha256 $want) in ${dl_time}s ($(awk -v s="$dl_speed" 'BEGIN{printf "%.1f", s*8/1e6}') Mbit/s)"
else
	fail "download: HTTP $dl_code, $dl_size bytes, sha256 ${got:-none} want $want ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s)"
fi

# ---- stop the dut, check its counters ----
kcount() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
if [[ -z $STANDIN ]]; then
	t0=$(date +%s%N)
	stop_rc=0
	tb_stop_aiqosd TERM 5 || stop_rc=$?
	stop_ms=$((($(date +%s%N) - t0) / 1000000))
	if [[ $stop_rc == 0 ]] && ((stop_ms <= 1500)); then
		pass "aiqosd exited 0 ${stop_ms} ms after SIGTERM"
	else
		fail "aiqosd after SIGTERM: exit $stop_rc after ${stop_ms} ms (want 0 within 1 s)"
	fi
	# The final table: a line per port naming the PMD, followed by numbers.
	if grep -qE 'net_af_packet0([[:space:]]+[0-9]+){4}' "$TB_DIR/aiqosd.log" &&
		grep -qE 'net_af_packet1([[:space:]]+[0-9]+){4}' "$TB_DIR/aiqosd.log"; then
		pass "aiqosd printed final counters"
	else
		fail "aiqosd printed no final counters on exit"
	fi
	leak_opt=()
	[[ ${AIQOS_E2E_MBUF_LEAK_OK:-0} == 1 ]] && leak_opt=(--mbuf-leak-ok)
	if python3 "$HERE/check_stats.py" "$TB_DIR/stats.json" "${leak_opt[@]}" \
		--kernel "cli0_rx=$(kcount "$TB_NS_CLI" cli0 rx_packets)" \
		--kernel "srv0_rx=$(kcount "$TB_NS_SRV" srv0 rx_packets)" | tee "$TB_DIR/stats_check.log"; then
		:
	else
		FAILS=$((FAILS + 1))
	fi
else
	info "stand-in $STANDIN: no aiqosd counters to check"
fi

info "summary: h2load ${H2_REQPS:-?} req/s (${H2_FINISHED_S:-?} s for $REQUESTS), 5 MB download ${dl_time:-?} s"
