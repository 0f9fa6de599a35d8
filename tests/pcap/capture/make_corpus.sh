#!/usr/bin/env bash
# Regenerates the pcap regression corpus: captures of REAL clients (curl, h2load, node http2,
# openssl) talking to real servers (server.js, openssl s_server), one folder a case:
#
#   tests/pcap/cases/<case>/in.pcap         both directions, as seen on the client's veth
#   tests/pcap/cases/<case>/expected.jsonl  one line per request, written by the client that sent
#                                           it (see tests/pcap/README.md for the fields)
#
# usage: sudo tests/pcap/capture/make_corpus.sh [CASE...]     (default: every case)
#   CASES_DIR=DIR   write somewhere else than tests/pcap/cases
#
# Network: two namespaces joined by one veth pair, nothing else on it. Addresses only in
# 198.18.0.0/15: 198.18.0.1 (client) - 198.18.0.2 (server), and VLAN 100 on top of the same veth:
# 198.19.100.1 - 198.19.100.2. Offloads are off so every captured frame is a real <=1514-byte
# frame; IPv6 is off and ARP entries are static so the captures hold only the test's traffic.
# Every wait is bounded; everything started is stopped (by pid) and the namespaces deleted on
# exit, failure included.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CASES_DIR=${CASES_DIR:-$(cd "$HERE/.." && pwd)/cases}
PY=/usr/bin/python3 # Debian's python (the one with scapy); curl_expect.py needs only the stdlib
ALL_CASES=(h2c_curl h2c_multiplex_node h2c_h2load h1_keepalive big_body_100k grpc_modelinfer kserve_rest tls_sni vlan_h2c llm_timing)
MAX_CASE_BYTES=$((300 * 1024))
MAX_TOTAL_BYTES=$((2 * 1024 * 1024))

PFX=aqcap$$
NS_C=$PFX-c
NS_S=$PFX-s
CLI_IP=198.18.0.1
SRV_IP=198.18.0.2
VCLI_IP=198.19.100.1
VSRV_IP=198.19.100.2
VLAN_MODE=
H2_PORT=8080
H1_PORT=8081
TLS_PORT=8443

log() { printf '[corpus] %s\n' "$*" >&2; }
die() {
	printf '[corpus] ERROR: %s\n' "$*" >&2
	exit 1
}

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, tcpdump)"
for c in ip ethtool tcpdump curl h2load node openssl "$PY"; do
	command -v "$c" >/dev/null || die "missing command: $c"
done

WORK=$(mktemp -d /tmp/aiqos-corpus.XXXXXX)
PIDS=() # everything we start in the background, stopped by pid on exit
TCPDUMP_PID=

cleanup() {
	local rc=$? p i
	trap '' INT TERM
	trap - EXIT
	for p in ${TCPDUMP_PID:+"$TCPDUMP_PID"} "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for ((i = 0; i < 20; i++)); do
		local alive=0
		for p in ${TCPDUMP_PID:+"$TCPDUMP_PID"} "${PIDS[@]}"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for p in ${TCPDUMP_PID:+"$TCPDUMP_PID"} "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	ip netns del "$NS_C" 2>/dev/null || true
	ip netns del "$NS_S" 2>/dev/null || true
	if [[ $rc != 0 ]]; then
		log "FAILED (exit $rc); work dir kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cli() { ip netns exec "$NS_C" "$@"; }
srv() { ip netns exec "$NS_S" "$@"; }

offloads_off() {
	local ns=$1 ifc=$2 f
	for f in tx rx tso gso gro lro sg ufo txvlan rxvlan rx-gro-list; do
		ip netns exec "$ns" ethtool -K "$ifc" "$f" off >/dev/null 2>&1 || true
	done
}

net_up() {
	ip netns add "$NS_C"
	ip netns add "$NS_S"
	local ns
	for ns in "$NS_C" "$NS_S"; do
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$ns" link set lo up
	done
	ip link add c0 netns "$NS_C" type veth peer name s0 netns "$NS_S"
	offloads_off "$NS_C" c0
	offloads_off "$NS_S" s0
	ip -n "$NS_C" link set c0 mtu 1500 up
	ip -n "$NS_S" link set s0 mtu 1500 up
	ip -n "$NS_C" addr add "$CLI_IP/24" dev c0
	ip -n "$NS_S" addr add "$SRV_IP/24" dev s0
	# VLAN 100: real subinterfaces when the kernel has 802.1Q; otherwise the same addresses go on
	# the untagged veth and vlan_h2c's capture gets its tags inserted afterwards (retag_pcap).
	VCLI_DEV=c0
	VSRV_DEV=s0
	if ip -n "$NS_C" link add link c0 name c0.100 type vlan id 100 2>/dev/null &&
		ip -n "$NS_S" link add link s0 name s0.100 type vlan id 100; then
		VLAN_MODE=kernel
		VCLI_DEV=c0.100
		VSRV_DEV=s0.100
		offloads_off "$NS_C" c0.100
		offloads_off "$NS_S" s0.100
		ip -n "$NS_C" link set c0.100 up
		ip -n "$NS_S" link set s0.100 up
	else
		VLAN_MODE=retag
		log "no 802.1Q in this kernel: vlan_h2c is captured untagged and tagged afterwards"
	fi
	ip -n "$NS_C" addr add "$VCLI_IP/24" dev "$VCLI_DEV"
	ip -n "$NS_S" addr add "$VSRV_IP/24" dev "$VSRV_DEV"
	# Static neighbours: no ARP in the captures.
	local cmac smac
	cmac=$(cli cat /sys/class/net/c0/address)
	smac=$(srv cat /sys/class/net/s0/address)
	ip -n "$NS_C" neigh replace "$SRV_IP" lladdr "$smac" dev c0 nud permanent
	ip -n "$NS_C" neigh replace "$VSRV_IP" lladdr "$smac" dev "$VCLI_DEV" nud permanent
	ip -n "$NS_S" neigh replace "$CLI_IP" lladdr "$cmac" dev s0 nud permanent
	ip -n "$NS_S" neigh replace "$VCLI_IP" lladdr "$cmac" dev "$VSRV_DEV" nud permanent
	log "namespaces $NS_C/$NS_S up"
}

# wait_listen PORT: until something in the server namespace listens on PORT (5 s at most).
wait_listen() {
	local i
	for ((i = 0; i < 50; i++)); do
		if srv ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
		sleep 0.1
	done
	die "nothing listens on port $1 after 5 s"
}

start_servers() {
	ip netns exec "$NS_S" node "$HERE/server.js" --h2c "$H2_PORT" --h1 "$H1_PORT" --log "$WORK/timing.jsonl" \
		>"$WORK/server.log" 2>&1 </dev/null &
	PIDS+=($!)
	wait_listen "$H2_PORT"
	wait_listen "$H1_PORT"
	log "server.js: h2c :$H2_PORT, h1 :$H1_PORT"
}

CASE=
CASE_DIR=
EXP=
capture_start() {
	CASE=$1
	CASE_DIR=$CASES_DIR/$CASE
	EXP=$CASE_DIR/expected.jsonl
	rm -rf "$CASE_DIR"
	mkdir -p "$CASE_DIR"
	: >"$EXP"
	ip netns exec "$NS_C" tcpdump -i c0 -s 0 -U --immediate-mode -n -w "$CASE_DIR/in.pcap" >"$WORK/$CASE.tcpdump.log" 2>&1 </dev/null &
	TCPDUMP_PID=$!
	local i
	for ((i = 0; i < 50; i++)); do
		grep -qs 'listening on' "$WORK/$CASE.tcpdump.log" && break
		kill -0 "$TCPDUMP_PID" 2>/dev/null || die "$CASE: tcpdump exited: $(cat "$WORK/$CASE.tcpdump.log")"
		sleep 0.1
	done
	grep -qs 'listening on' "$WORK/$CASE.tcpdump.log" || die "$CASE: tcpdump not listening after 5 s"
	log "$CASE: capturing"
}

capture_stop() {
	local i
	sleep 1 # the last ACKs and FINs
	kill -INT "$TCPDUMP_PID" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$TCPDUMP_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$TCPDUMP_PID" 2>/dev/null || true
	wait "$TCPDUMP_PID" 2>/dev/null || true
	TCPDUMP_PID=
	grep -q '^0 packets dropped by kernel' "$WORK/$CASE.tcpdump.log" ||
		die "$CASE: tcpdump dropped packets: $(cat "$WORK/$CASE.tcpdump.log")"
	local n bytes frames
	n=$(wc -l <"$EXP")
	bytes=$(stat -c %s "$CASE_DIR/in.pcap")
	frames=$(grep -oE '^[0-9]+ packets captured' "$WORK/$CASE.tcpdump.log" | cut -d' ' -f1)
	((n > 0)) || die "$CASE: no expected requests"
	((bytes < MAX_CASE_BYTES)) || die "$CASE: in.pcap is $bytes bytes (limit $MAX_CASE_BYTES)"
	log "$CASE: $n requests, $frames frames, $bytes bytes"
}

# spec ENDPOINT MODEL|null SOURCE|null BODY_FILE|- [TENANT]: one request's JSON for curl_expect.py.
spec() {
	local model=null src=null tenant=null bytes=0
	[[ $2 == null ]] || model="\"$2\""
	[[ $3 == null ]] || src="\"$3\""
	[[ $4 == - ]] || bytes=$(stat -c %s "$4")
	[[ -z ${5:-} ]] || tenant="\"$5\""
	printf '{"endpoint":"%s","model":%s,"model_source":%s,"req_bytes":%d,"tenant":%s}' "$1" "$model" "$src" "$bytes" "$tenant"
}

# curl_run PROTO VLAN SPEC... -- CURL_ARGS...: one curl invocation, its transfers appended to $EXP.
curl_run() {
	local proto=$1 vlan=$2 specs=()
	shift 2
	while [[ $1 != -- ]]; do
		specs+=("$1")
		shift
	done
	shift
	cli curl -sS --max-time 20 "$@" >"$WORK/curl.out" 2>"$WORK/curl.err" ||
		die "$CASE: curl failed: $(cat "$WORK/curl.err")"
	"$PY" "$HERE/curl_expect.py" --out "$EXP" --proto "$proto" --vlan "$vlan" "${specs[@]}" <"$WORK/curl.out"
}
W=(-o /dev/null -w '%{json}\n') # per-transfer curl options: discard the body, report as JSON

node_client() { cli timeout 40 node "$HERE/client.js" "$@"; }

# body FILE JSON: write a request body.
body() { printf '%s' "$2" >"$WORK/$1"; }

# bigbody FILE BYTES MODEL before|after: a chat body with a messages array of about BYTES.
bigbody() {
	"$PY" - "$WORK/$1" "$2" "$3" "$4" <<'PY'
import json, sys
path, size, model, where = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lorem = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
         "labore et dolore magna aliqua. ")
msgs = [{"role": "system", "content": 'Reply like {"model": "decoy-in-string"} would.'}]
n = 0
while len(json.dumps(msgs)) < size:
    msgs.append({"role": "user" if n % 2 == 0 else "assistant",
                 "content": f'turn {n}: "model" \\ {lorem}{lorem[:(n * 31) % len(lorem)]}'})
    n += 1
obj = {"model": model, "messages": msgs} if where == "before" else {"messages": msgs, "max_tokens": 4, "model": model}
open(path, "w").write(json.dumps(obj))
PY
}

H2="http://$SRV_IP:$H2_PORT"
H1="http://$SRV_IP:$H1_PORT"

case_h2c_curl() {
	capture_start h2c_curl
	body chat.json '{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hello"}],"max_tokens":8}'
	body emb.json '{"input":["The food was delicious","and the waiter..."],"model":"text-embedding-3-small","encoding_format":"float"}'
	body cmpl.json '{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","max_tokens":7,"temperature":0}'
	body anth.json '{"model":"claude-3-5-haiku-20241022","max_tokens":16,"messages":[{"role":"user","content":"Hello, Claude"}]}'
	body ollama.json '{"model":"llama3.1:8b","messages":[{"role":"user","content":"why is the sky blue?"}]}'
	body stream.json '{"model":"o1-mini","stream":true,"messages":[{"role":"user","content":"count to five"}]}'
	body resp.json '{"model":"gpt-4.1","input":"Tell me a three sentence bedtime story about a unicorn."}'
	body nomodel.json '{"model":"does-not-exist","messages":[{"role":"user","content":"hi"}]}'
	local j=(-H 'content-type: application/json')
	curl_run h2 0 "$(spec chat_completions gpt-4o body "$WORK/chat.json" curlco)" -- --http2-prior-knowledge "${W[@]}" \
		"${j[@]}" -H 'authorization: Bearer sk-corpus' -H 'x-tenant: curlco' --data-binary @"$WORK/chat.json" "$H2/v1/chat/completions"
	curl_run h2 0 "$(spec embeddings text-embedding-3-small body "$WORK/emb.json")" -- --http2-prior-knowledge "${W[@]}" \
		"${j[@]}" --data-binary @"$WORK/emb.json" "$H2/v1/embeddings"
	curl_run h2 0 "$(spec completions gpt-3.5-turbo-instruct body "$WORK/cmpl.json")" -- --http2-prior-knowledge "${W[@]}" \
		"${j[@]}" --data-binary @"$WORK/cmpl.json" "$H2/v1/completions"
	curl_run h2 0 "$(spec anthropic_messages claude-3-5-haiku-20241022 body "$WORK/anth.json" curlco)" -- --http2-prior-knowledge "${W[@]}" \
		"${j[@]}" -H 'x-api-key: sk-ant-corpus' -H 'anthropic-version: 2023-06-01' -H 'x-tenant: curlco' \
		--data-binary @"$WORK/anth.json" "$H2/v1/messages"
	curl_run h2 0 "$(spec ollama_chat llama3.1:8b body "$WORK/ollama.json")" -- --http2-prior-knowledge "${W[@]}" \
		--data-binary @"$WORK/ollama.json" "$H2/api/chat"
	curl_run h2 0 "$(spec chat_completions o1-mini body "$WORK/stream.json")" -- --http2-prior-knowledge -N "${W[@]}" \
		"${j[@]}" -H 'accept: text/event-stream' --data-binary @"$WORK/stream.json" "$H2/v1/chat/completions"
	curl_run h2 0 "$(spec responses gpt-4.1 body "$WORK/resp.json")" -- --http2-prior-knowledge "${W[@]}" \
		"${j[@]}" --data-binary @"$WORK/resp.json" "$H2/v1/responses"
	curl_run h2 0 "$(spec chat_completions does-not-exist body "$WORK/nomodel.json")" -- --http2-prior-knowledge "${W[@]}" \
		"${j[@]}" --data-binary @"$WORK/nomodel.json" "$H2/v1/chat/completions"
	capture_stop
}

case_h2c_multiplex_node() {
	capture_start h2c_multiplex_node
	node_client --mode multiplex --host "$SRV_IP" --port "$H2_PORT" --out "$EXP"
	capture_stop
}

case_h2c_h2load() {
	capture_start h2c_h2load
	body load.json '{"model":"llama-3.1-8b-instruct","messages":[{"role":"user","content":"ping"}],"max_tokens":1}'
	cli timeout 60 h2load -n 200 -c 2 -m 10 -d "$WORK/load.json" -H 'content-type: application/json' \
		-H 'x-tenant: loadco' "$H2/v1/chat/completions" >"$WORK/h2load.log" 2>&1 ||
		die "h2load failed: $(tail -n 20 "$WORK/h2load.log")"
	grep -q '^requests: 200 total, 200 started, 200 done, 200 succeeded' "$WORK/h2load.log" &&
		grep -q '^status codes: 200 2xx' "$WORK/h2load.log" ||
		die "h2load: not 200 successful requests: $(grep -E '^(requests|status)' "$WORK/h2load.log")"
	"$PY" - "$EXP" "$(stat -c %s "$WORK/load.json")" "$CLI_IP" "$SRV_IP" "$H2_PORT" <<'PY'
import json, sys
out, n, src, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
# h2load reports no ports or stream ids: those stay null (not compared); the count must match.
rec = {"proto": "h2", "src": src, "dst": dst, "sport": None, "dport": dport, "vlan": 0, "stream_id": None,
       "method": "POST", "authority": f"{dst}:{dport}", "path": "/v1/chat/completions",
       "endpoint": "chat_completions", "model": "llama-3.1-8b-instruct", "model_source": "body",
       "tenant": "loadco", "status": 200, "req_bytes": n}
with open(out, "a") as f:
    for _ in range(200):
        f.write(json.dumps(rec) + "\n")
PY
	capture_stop
}

case_h1_keepalive() {
	capture_start h1_keepalive
	body a.json '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"keep-alive 1"}]}'
	body b.json '{"input":"keep-alive 2","model":"text-embedding-ada-002"}'
	body c.json '{"messages":[{"role":"user","content":"keep-alive stream"}],"stream":true,"model":"mistral-small-latest"}'
	body d.json '{"model":"llama3.2","prompt":"keep-alive 4","stream":false}'
	body e.json '{"prompt":"no such API"}'
	local j=(-H 'content-type: application/json')
	# One curl, six transfers, one connection (--next keeps curl's connection cache).
	curl_run h1 0 \
		"$(spec chat_completions gpt-4o-mini body "$WORK/a.json" h1co)" \
		"$(spec embeddings text-embedding-ada-002 body "$WORK/b.json")" \
		"$(spec other null null -)" \
		"$(spec chat_completions mistral-small-latest body "$WORK/c.json")" \
		"$(spec ollama_generate llama3.2 body "$WORK/d.json")" \
		"$(spec other null null "$WORK/e.json")" \
		-- --http1.1 \
		"${W[@]}" "${j[@]}" -H 'x-tenant: h1co' --data-binary @"$WORK/a.json" "$H1/v1/chat/completions" --next \
		"${W[@]}" "${j[@]}" --data-binary @"$WORK/b.json" "$H1/v1/embeddings" --next \
		"${W[@]}" "$H1/v1/models" --next \
		"${W[@]}" "${j[@]}" -N --data-binary @"$WORK/c.json" "$H1/v1/chat/completions" --next \
		"${W[@]}" --data-binary @"$WORK/d.json" "$H1/api/generate" --next \
		"${W[@]}" "${j[@]}" --data-binary @"$WORK/e.json" "$H1/v1/unknown"
	"$PY" - "$EXP" <<'PY' || die "h1_keepalive: curl did not reuse one connection"
import json, sys
ports = {json.loads(l)["sport"] for l in open(sys.argv[1])}
sys.exit(0 if len(ports) == 1 else 1)
PY
	# Chunked request body, model after a 20 KB messages array.
	bigbody chunked.json 20000 gpt-4o after
	curl_run h1 0 "$(spec chat_completions gpt-4o body "$WORK/chunked.json")" -- --http1.1 "${W[@]}" "${j[@]}" \
		-H 'Transfer-Encoding: chunked' --data-binary @"$WORK/chunked.json" "$H1/v1/chat/completions"
	# Expect: 100-continue: the interim 100 must not be taken for the answer.
	body f.json '{"model":"claude-3-opus-20240229","max_tokens":8,"messages":[{"role":"user","content":"expect"}]}'
	curl_run h1 0 "$(spec anthropic_messages claude-3-opus-20240229 body "$WORK/f.json")" -- --http1.1 "${W[@]}" "${j[@]}" \
		-H 'Expect: 100-continue' --data-binary @"$WORK/f.json" "$H1/v1/messages"
	node_client --mode pipeline --host "$SRV_IP" --port "$H1_PORT" --out "$EXP"
	capture_stop
}

case_big_body_100k() {
	capture_start big_body_100k
	node_client --mode big --host "$SRV_IP" --port "$H2_PORT" --out "$EXP"
	bigbody big_h1.json 102400 mixtral-8x7b-instruct after
	curl_run h1 0 "$(spec chat_completions mixtral-8x7b-instruct body "$WORK/big_h1.json")" -- --http1.1 "${W[@]}" \
		-H 'content-type: application/json' --data-binary @"$WORK/big_h1.json" "$H1/v1/chat/completions"
	capture_stop
}

case_grpc_modelinfer() {
	capture_start grpc_modelinfer
	node_client --mode grpc --host "$SRV_IP" --port "$H2_PORT" --out "$EXP"
	capture_stop
}

case_kserve_rest() {
	capture_start kserve_rest
	node_client --mode kserve --host "$SRV_IP" --port "$H2_PORT" --out "$EXP"
	body infer.json '{"id":"42","inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[0.5,1.5,2.5,3.5]}]}'
	body gen.json '{"text_input":"What is machine learning?","parameters":{"max_tokens":8,"temperature":0}}'
	body tgi.json '{"inputs":"What is Deep Learning?","parameters":{"max_new_tokens":8}}'
	local j=(-H 'content-type: application/json')
	curl_run h1 0 \
		"$(spec kserve_infer resnet50 path "$WORK/infer.json")" \
		"$(spec triton_generate llama path "$WORK/gen.json")" \
		"$(spec tgi_generate null null "$WORK/tgi.json")" \
		-- --http1.1 \
		"${W[@]}" "${j[@]}" --data-binary @"$WORK/infer.json" "$H1/v2/models/resnet50/infer" --next \
		"${W[@]}" "${j[@]}" --data-binary @"$WORK/gen.json" "$H1/v2/models/llama/versions/2/generate" --next \
		"${W[@]}" "${j[@]}" --data-binary @"$WORK/tgi.json" "$H1/generate"
	capture_stop
}

case_tls_sni() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=api.openai.example -addext 'subjectAltName=DNS:api.openai.example,DNS:chat.example.net' \
		-keyout "$WORK/tls.key" -out "$WORK/tls.crt" >/dev/null 2>&1
	ip netns exec "$NS_S" timeout 60 openssl s_server -accept "$TLS_PORT" -naccept 2 -cert "$WORK/tls.crt" -key "$WORK/tls.key" \
		-alpn h2,http/1.1 -www >"$WORK/s_server.log" 2>&1 </dev/null &
	local sp=$!
	PIDS+=("$sp")
	wait_listen "$TLS_PORT"
	capture_start tls_sni
	# 1. openssl s_client offering h2; stdin at EOF: handshake, close_notify, exit.
	cli timeout 10 openssl s_client -connect "$SRV_IP:$TLS_PORT" -servername api.openai.example -alpn h2 \
		</dev/null >"$WORK/s_client.log" 2>&1 || die "s_client failed: $(tail -n 5 "$WORK/s_client.log")"
	grep -q 'ALPN protocol: h2' "$WORK/s_client.log" || die "s_client: no h2 ALPN"
	# s_client does not say its port: sport null, matched by the other fields.
	"$PY" - "$EXP" "$CLI_IP" "$SRV_IP" "$TLS_PORT" <<'PY'
import json, sys
out, src, dst, dport = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(out, "a") as f:
    f.write(json.dumps({"proto": "tls", "src": src, "dst": dst, "sport": None, "dport": dport, "vlan": 0,
                        "stream_id": None, "method": None, "authority": "api.openai.example", "path": None,
                        "endpoint": "other", "model": None, "model_source": None, "tenant": None,
                        "status": None}) + "\n")
PY
	# 2. curl, HTTP/1.1 inside TLS with another SNI.
	cli curl -sS --max-time 10 -k --http1.1 --resolve "chat.example.net:$TLS_PORT:$SRV_IP" -o /dev/null -w '%{json}\n' \
		"https://chat.example.net:$TLS_PORT/" >"$WORK/curl.out" 2>"$WORK/curl.err" || die "curl tls: $(cat "$WORK/curl.err")"
	"$PY" - "$EXP" "$WORK/curl.out" <<'PY'
import json, sys
w = json.loads(open(sys.argv[2]).readline())
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"proto": "tls", "src": w["local_ip"], "dst": w["remote_ip"], "sport": w["local_port"],
                        "dport": w["remote_port"], "vlan": 0, "stream_id": None, "method": None,
                        "authority": "chat.example.net", "path": None, "endpoint": "other", "model": None,
                        "model_source": None, "tenant": None, "status": None}) + "\n")
PY
	capture_stop
	wait "$sp" 2>/dev/null || true
}

case_vlan_h2c() {
	capture_start vlan_h2c
	local V2="http://$VSRV_IP:$H2_PORT"
	body v1.json '{"model":"gpt-4o","messages":[{"role":"user","content":"tagged"}]}'
	body v2.json '{"model":"llama3.1:8b","messages":[{"role":"user","content":"tagged ollama"}],"stream":false}'
	curl_run h2 100 "$(spec chat_completions gpt-4o body "$WORK/v1.json" vlanco)" -- --http2-prior-knowledge "${W[@]}" \
		-H 'content-type: application/json' -H 'x-tenant: vlanco' --data-binary @"$WORK/v1.json" "$V2/v1/chat/completions"
	curl_run h2 100 "$(spec ollama_chat llama3.1:8b body "$WORK/v2.json")" -- --http2-prior-knowledge "${W[@]}" \
		--data-binary @"$WORK/v2.json" "$V2/api/chat"
	node_client --mode vlan --host "$VSRV_IP" --port "$H2_PORT" --vlan 100 --out "$EXP"
	capture_stop
	[[ $VLAN_MODE == kernel ]] || retag_pcap "$CASE_DIR/in.pcap" 100
}

# Streaming responses paced as real LLM servers send them: headers at once, the first token 300 ms
# after the request, then 20 tokens 50 ms apart, and the usage the API reports. Every API family,
# HTTP/2 (curl --http2-prior-knowledge) and HTTP/1.1 (chunked). The expected TTFT, TPOT and token
# figures are the server's own log of what it sent and when (server.js --log).
case_llm_timing() {
	capture_start llm_timing
	: >"$WORK/timing.jsonl"
	local t=(-H 'x-aiqos-timing: 300/50' -H 'content-type: application/json') msgs='"messages":[{"role":"user","content":"Count to twenty."}]'
	body t_chat.json '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,'"$msgs"'}'
	body t_anth.json '{"model":"claude-3-5-haiku-20241022","stream":true,"max_tokens":20,'"$msgs"'}'
	body t_resp.json '{"model":"gpt-4.1-mini","stream":true,"max_tokens":20,"input":"Count to twenty."}'
	body t_ollama.json '{"model":"llama3.1:8b","max_tokens":20,'"$msgs"'}'
	body t_gen.json '{"model":"llama3.2","max_tokens":20,"prompt":"Count to twenty."}'
	body t_tgi.json '{"inputs":"Count to twenty.","max_tokens":20,"parameters":{"max_new_tokens":20}}'
	body t_triton.json '{"text_input":"Count to twenty.","max_tokens":20}'
	body t_cmpl.json '{"model":"gpt-3.5-turbo-instruct","stream":true,"max_tokens":20,"prompt":"Count to twenty."}'
	local h2=(--http2-prior-knowledge -N "${W[@]}" "${t[@]}") h1=(--http1.1 -N "${W[@]}" "${t[@]}")
	curl_run h2 0 "$(spec chat_completions gpt-4o-mini body "$WORK/t_chat.json")" -- "${h2[@]}" --data-binary @"$WORK/t_chat.json" "$H2/v1/chat/completions"
	curl_run h2 0 "$(spec anthropic_messages claude-3-5-haiku-20241022 body "$WORK/t_anth.json")" -- "${h2[@]}" --data-binary @"$WORK/t_anth.json" "$H2/v1/messages"
	curl_run h2 0 "$(spec responses gpt-4.1-mini body "$WORK/t_resp.json")" -- "${h2[@]}" --data-binary @"$WORK/t_resp.json" "$H2/v1/responses"
	curl_run h2 0 "$(spec ollama_chat llama3.1:8b body "$WORK/t_ollama.json")" -- "${h2[@]}" --data-binary @"$WORK/t_ollama.json" "$H2/api/chat"
	curl_run h2 0 "$(spec tgi_generate null null "$WORK/t_tgi.json")" -- "${h2[@]}" --data-binary @"$WORK/t_tgi.json" "$H2/generate_stream"
	curl_run h2 0 "$(spec triton_generate llama path "$WORK/t_triton.json")" -- "${h2[@]}" --data-binary @"$WORK/t_triton.json" "$H2/v2/models/llama/generate_stream"
	curl_run h1 0 "$(spec chat_completions gpt-4o-mini body "$WORK/t_chat.json")" "$(spec ollama_generate llama3.2 body "$WORK/t_gen.json")" \
		"$(spec completions gpt-3.5-turbo-instruct body "$WORK/t_cmpl.json")" -- \
		"${h1[@]}" --data-binary @"$WORK/t_chat.json" "$H1/v1/chat/completions" --next \
		"${h1[@]}" --data-binary @"$WORK/t_gen.json" "$H1/api/generate" --next \
		"${h1[@]}" --data-binary @"$WORK/t_cmpl.json" "$H1/v1/completions"
	capture_stop
	"$PY" - "$EXP" "$WORK/timing.jsonl" <<'PY' || die "llm_timing: server log does not match the requests"
import json, sys
exp_path, log_path = sys.argv[1], sys.argv[2]
exp = [json.loads(l) for l in open(exp_path)]
log = [json.loads(l) for l in open(log_path)]
provider = {"chat_completions": "openai", "completions": "openai", "responses": "openai", "anthropic_messages": "anthropic",
            "ollama_chat": "ollama", "ollama_generate": "ollama", "tgi_generate": "tgi", "triton_generate": "kserve"}
used = set()
for e in exp:
    k = next(i for i, s in enumerate(log) if i not in used and s["sport"] == e["sport"] and
             (e["stream_id"] is None or s["stream_id"] == e["stream_id"]))
    used.add(k)
    s = log[k]
    u = s.get("usage") or {}
    e.update({"ttft_ms": round(s["ttft_ms"], 3), "tpot_ms": round(s["tpot_ms"], 3), "provider": provider[e["endpoint"]],
              "output_tokens": u.get("output", s["tokens_sent"]), "token_source": "usage" if "output" in u else "counted",
              "error_type": None})
    if "input" in u:
        e["input_tokens"] = u["input"]
assert len(used) == len(log) == len(exp), (len(used), len(log), len(exp))
with open(exp_path, "w") as f:
    for e in exp:
        f.write(json.dumps(e) + "\n")
PY
}

# retag_pcap FILE VID: insert an 802.1Q tag (VID, priority 0) after the MAC addresses of every
# untagged frame, in place. Only for kernels without 802.1Q (see net_up).
retag_pcap() {
	"$PY" - "$1" "$2" <<'PY'
import struct, sys
path, vid = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
magic = data[:4]
e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
out, off, n = [data[:24]], 24, 0
tag = struct.pack(">HH", 0x8100, vid & 0x0FFF)
while off + 16 <= len(data):
    ts, tu, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    if len(frame) >= 14 and frame[12:14] != b"\x81\x00":
        frame = frame[:12] + tag + frame[12:]
        incl, orig, n = incl + 4, orig + 4, n + 1
    out.append(struct.pack(e + "IIII", ts, tu, incl, orig) + frame)
open(path, "wb").write(b"".join(out))
print(f"[corpus] retagged {n} frames with VLAN {vid}", file=sys.stderr)
PY
}

main() {
	local cases=("$@") c
	((${#cases[@]})) || cases=("${ALL_CASES[@]}")
	for c in "${cases[@]}"; do
		declare -F "case_$c" >/dev/null || die "unknown case $c (cases: ${ALL_CASES[*]})"
	done
	net_up
	start_servers
	for c in "${cases[@]}"; do
		"case_$c"
	done
	local total
	total=$(cat "$CASES_DIR"/*/in.pcap | wc -c)
	((total < MAX_TOTAL_BYTES)) || die "corpus is $total bytes (limit $MAX_TOTAL_BYTES)"
	log "corpus: $(find "$CASES_DIR" -name in.pcap | wc -l) cases, $total bytes of pcap in $CASES_DIR"
}

main "$@"
