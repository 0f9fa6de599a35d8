#!/usr/bin/env bash
# End-to-end QoS: real h2c traffic through aiqosd (af_packet on two veths) in the testbed, with the
# policies in tests/e2e/qos/. Needs root. Exit 0 = pass, 1 = fail, 77 = skipped (meson's SKIP).
#
# usage: qos_test.sh AIQOSD_BIN AIQOSCTL_BIN [PHASE...]   PHASE: rate priority priority-inverted vlan remark order
#
#   rate      a class shaped to 20 Mbit/s (exceed: drop) gives a 25 MB download 20 Mbit/s of
#             GOODPUT +-10% (curl's speed_download: HTTP body bytes; the frames carrying them are
#             ~4.6% more: 1514-byte frames for 1448 bytes of payload), while an unlimited class
#             downloads concurrently at >= 3x that.
#   priority  --egress-rate 20Mbit, reno in both namespaces (so that a queue forms in aiqosd):
#             three batch downloads saturate the link; of 400 interactive h2load requests, every
#             one counted (per-request times from --log-file; one not done in 15 s counts as
#             infinite), all complete and the p99 stays within 2x (+50 ms) of its uncontended p99
#             (waiting behind the batch queue would cost 310 ms);
#             batch gets >= 70% of the link meanwhile; the client's receive rate stays within
#             10..25 Mbit/s in every 1 s interval (the egress rate holds). The default class
#             (every connection's handshake) is above batch, or new connections starve.
#   priority-inverted  the same with a policy that inverts the two classes' priorities: the same
#             check must FAIL (proof that it can).
#   vlan      a class with vlan 100 pcp 5: frames of its flow, from the request on, leave tagged
#             (tcpdump on srv0 in the server namespace; the server's kernel drops tagged frames,
#             so the request does not complete: expected). The handshake stays untagged.
#   remark    a class policed at 1 Mbit/s with exceed: remark exceed_dscp: 8: a 2 MB download's
#             frames carry DSCP 26 within the rate and DSCP 8 above it; aiqosctl shows remarked > 0.
#   order     --egress-rate 20Mbit, reno: 12 h2c connections each multiplex a 300 KB batch download
#             and a 3 KB interactive one, so their class changes while the download is queued;
#             tshark on cli0 finds no out-of-order segment and no gap (lost segment) on them, and
#             aiqosd counts frames held in their flow's earlier class.
#
# Environment: AIQOS_E2E_OUT (logs; default tests/e2e/out), AIQOS_KEEP_LOGS=1 (keep logs after a
# pass), AIQOS_TB_PREFIX (namespace prefix).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 2 99 "$@"
AIQOSD=$(realpath "$1")
AIQOSCTL=$(realpath "$2")
shift 2
PHASES=("$@")
((${#PHASES[@]})) || PHASES=(rate priority priority-inverted vlan remark order)
e2e_need tcpdump tshark h2load curl node /usr/bin/python3
e2e_testbed qos aqqos
URL="http://$TB_SRV_IP:$TB_PORT"
CTL_SOCK="$TB_DIR/ctl.sock"

mbit() { awk -v b="$1" 'BEGIN { printf "%.1f", b * 8 / 1e6 }'; } # bytes/s -> Mbit/s
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# start_dut POLICY [aiqosd options]: aiqosd with its log, stats and control socket in TB_DIR.
start_dut() {
	local policy=$1
	shift
	rm -f "$CTL_SOCK"
	tb_start_aiqosd "$AIQOSD" --policy "$HERE/qos/$policy" --stats-interval 0 \
		--stats-json "$TB_DIR/stats.$policy.json" --ctl-socket "$CTL_SOCK" --prometheus none "$@"
}
stop_dut() {
	local rc=0
	tb_stop_aiqosd TERM 5 || rc=$?
	cp "$TB_DIR/aiqosd.log" "$TB_DIR/aiqosd.$1.log" 2>/dev/null || true
	if [[ $rc == 0 ]]; then pass "$1: aiqosd exited 0"; else fail "$1: aiqosd exit $rc"; fi
}
ctl() { "$AIQOSCTL" --socket "$CTL_SOCK" --timeout 5 "$@"; }

# The numbers one class has in `aiqosctl --json classes`: "frames bytes policed remarked demoted".
class_counters() {
	ctl --json classes | /usr/bin/python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["name"] == sys.argv[1]:
        print(c["frames"], c["bytes"], c["policed"], c["remarked"], c["demoted"])' "$1"
}

# curl_dl CLASS BYTES OUTFILE [MAXTIME]: GET /download/BYTES with x-class: CLASS; prints
# "http_code size_download time_total speed_download" (bytes, s, bytes/s).
curl_dl() {
	tb_cli curl -sS --http2-prior-knowledge --max-time "${4:-60}" -o /dev/null -H "x-class: $1" \
		-w '%{http_code} %{size_download} %{time_total} %{speed_download}\n' "$URL/download/$2" \
		>"$3" 2>"$3.err" || true
}

tb_up || { fail "testbed set-up"; exit 1; }
tb_start_h2c_server node || { fail "h2c server start-up"; exit 1; }

# ----------------------------------------------------------------------------------------- (a)
phase_rate() {
	local lim=25000000
	start_dut rate.yaml || { fail "rate: aiqosd start-up"; return; }
	# Uncontended first, then the same download while the unlimited class pulls as hard as it can.
	curl_dl limited "$lim" "$TB_DIR/rate.alone"
	read -r code size t speed <"$TB_DIR/rate.alone"
	info "rate: limited class alone: HTTP $code, $size bytes in ${t}s = $(mbit "$speed") Mbit/s goodput"
	local alone=$speed

	curl_dl limited "$lim" "$TB_DIR/rate.limited" &
	local lpid=$!
	BG_PIDS+=("$lpid")
	local ubytes=0 i line t0 t1
	t0=$(date +%s.%N)
	# Unlimited downloads back to back while the limited one runs (bounded: 200 x 100 MB).
	for ((i = 0; i < 200; i++)); do
		tb_pid_alive "$lpid" || break
		curl_dl unlimited 100000000 "$TB_DIR/rate.unlimited.$i" 30
		read -r code size _ _ <"$TB_DIR/rate.unlimited.$i"
		[[ $code == 200 ]] || { fail "rate: unlimited download $i: HTTP $code $(head -c 200 "$TB_DIR/rate.unlimited.$i.err")"; break; }
		ubytes=$((ubytes + size))
	done
	t1=$(date +%s.%N)
	wait "$lpid" || true
	BG_PIDS=()
	local ubps
	ubps=$(awk -v b="$ubytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", b / (c - a) }')
	read -r code size t speed <"$TB_DIR/rate.limited"
	local frames_mbit
	frames_mbit=$(awk -v s="$speed" 'BEGIN { printf "%.1f", s * 8 / 1e6 * 1514 / 1448 }')
	info "rate: limited with unlimited beside it: HTTP $code, $size bytes in ${t}s = $(mbit "$speed") Mbit/s goodput (~$frames_mbit Mbit/s of frames); unlimited $((ubytes / 1000000)) MB in $(awk -v a="$t0" -v c="$t1" 'BEGIN{printf "%.1f", c-a}')s = $(mbit "$ubps") Mbit/s"
	if [[ $code == 200 && $size == "$lim" ]] && ge "$speed" 2250000 && ge 2750000 "$speed"; then
		pass "rate: 20Mbit class: $(mbit "$speed") Mbit/s goodput with an unlimited class beside it (want 18-22); alone $(mbit "$alone")"
	else
		fail "rate: 20Mbit class: HTTP $code, $size bytes, $(mbit "$speed") Mbit/s goodput (want 18-22)"
	fi
	if ge "$alone" 2250000 && ge 2750000 "$alone"; then
		pass "rate: 20Mbit class alone: $(mbit "$alone") Mbit/s goodput (want 18-22)"
	else
		fail "rate: 20Mbit class alone: $(mbit "$alone") Mbit/s goodput (want 18-22)"
	fi
	if ge "$ubps" $((3 * 2500000)); then
		pass "rate: unlimited class beside it: $(mbit "$ubps") Mbit/s (want >= 60)"
	else
		fail "rate: unlimited class beside it: $(mbit "$ubps") Mbit/s (want >= 60)"
	fi
	read -r f b _ _ _ < <(class_counters limited) || true
	info "rate: aiqosctl: limited class $f frames, $b bytes (both directions)"
	stop_dut rate
	/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print("INFO: rate: drops by port:", {p["port"]: {k: v for k, v in p.get("drops", {}).items() if v} for p in s["ports"]})' \
		"$TB_DIR/stats.rate.yaml.json" || true
}

# ----------------------------------------------------------------------------------------- (b)
# Strict priority where a queue really forms: reno in both namespaces (bbr, the default here,
# paces itself and keeps aiqosd's queue almost empty, so any priority order passes), batch
# downloads offering far more than --egress-rate, and every interactive request of the measured
# runs counted (a request that did not complete in time counts as infinitely slow).
PRIO_RATE_BPS=20000000
PRIO_N=400       # interactive requests per measured run
PRIO_LOADED_S=15 # at most this long for the loaded run (inverted priorities: requests starve)

# prio_stats FILE: "p99_ms ok bad p50_ms max_ms" of an h2load --log-file (start_us, status,
# duration_us) over all PRIO_N requests: missing rows and non-200s count as infinite.
prio_stats() {
	/usr/bin/python3 - "$1" "$PRIO_N" <<'PY'
import math, sys
n = int(sys.argv[2])
d, bad = [], 0
try:
    for line in open(sys.argv[1]):
        f = line.split("\t")
        if len(f) < 3:
            continue
        if f[1] == "200":
            d.append(int(f[2]) / 1000)
        else:
            bad += 1
except FileNotFoundError:
    pass
ok = len(d)
d.sort()
d += [math.inf] * max(0, n - ok)
p = lambda q: d[min(len(d) - 1, math.ceil(q * len(d)) - 1)] if d else math.inf
print(f"{p(0.99):.3f} {ok} {bad} {p(0.5):.3f} {max(d) if d else math.inf:.3f}")
PY
}

run_h2load() { # NAME N TIMEOUT_S
	printf '%s' '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":8}' >"$TB_DIR/prio.body.json"
	rm -f "$TB_DIR/prio.$1.tsv"
	local rc=0
	timeout "$3" ip netns exec "$TB_NS_CLI" h2load -n "$2" -c 2 -m 1 -H 'content-type: application/json' \
		-H 'x-class: interactive' -d "$TB_DIR/prio.body.json" --log-file "$TB_DIR/prio.$1.tsv" \
		"$URL/v1/chat/completions" >"$TB_DIR/prio.$1.log" 2>&1 || rc=$?
	# h2load buffers its log file: one stopped by the timeout may leave none of its rows.
	((rc != 124)) || info "priority: h2load $1 did not finish $2 requests in $3 s (stopped; none counted)"
}

# phase_priority NAME POLICY EXPECT: EXPECT pass (the check must hold) or fail (the same check
# must fail: the policy inverts the priorities, and a check that passes then proves nothing).
phase_priority() {
	local name=$1 policy=$2 expect=$3
	start_dut "$policy" --egress-rate "$((PRIO_RATE_BPS / 1000000))Mbit" || { fail "$name: aiqosd start-up"; return; }
	local ns
	for ns in "$TB_NS_CLI" "$TB_NS_SRV"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control=reno || fail "$name: reno in $ns"
	done
	run_h2load warmup 200 30
	run_h2load alone "$PRIO_N" 30
	local a_p99 a_n a_bad a_p50 a_max
	read -r a_p99 a_n a_bad a_p50 a_max <<<"$(prio_stats "$TB_DIR/prio.alone.tsv")"
	info "$name: interactive alone: $a_n/$PRIO_N requests, p50 $a_p50 ms, p99 $a_p99 ms, max $a_max ms"

	# Batch: three downloads, far more than the egress rate carries, for as long as the loaded run
	# may take. The client's received bytes are sampled every 1 s from 1 s in (each rate over
	# the time that really passed between two reads; 1 s, as 0.5 s read 16 then 25 Mbit/s on a
	# loaded machine: the read and its timestamp are two processes apart).
	local k
	for k in 1 2 3; do
		# Started directly (ip netns exec execs curl): stop_bg's kill reaches curl itself.
		ip netns exec "$TB_NS_CLI" curl -sS --http2-prior-knowledge --max-time $((PRIO_LOADED_S + 8)) -o /dev/null \
			-H "x-class: batch" "$URL/download/1000000000" >/dev/null 2>"$TB_DIR/prio.batch.$k.err" &
		BG_PIDS+=($!)
	done
	(
		sleep 1
		prev=$(tb_cli cat /sys/class/net/cli0/statistics/rx_bytes)
		tprev=$(date +%s%N)
		for ((k = 0; k < 5; k++)); do
			sleep 1
			cur=$(tb_cli cat /sys/class/net/cli0/statistics/rx_bytes)
			tcur=$(date +%s%N)
			echo $(((cur - prev) * 8 * 1000000000 / (tcur - tprev)))
			prev=$cur
			tprev=$tcur
		done
	) >"$TB_DIR/prio.link.bps" &
	local sampler=$!
	sleep 3 # reno fills the batch queue
	local b0 b1 t0 t1
	read -r _ b0 _ _ _ < <(class_counters batch) || true
	t0=$(date +%s.%N)
	run_h2load loaded "$PRIO_N" "$PRIO_LOADED_S"
	read -r _ b1 _ _ _ < <(class_counters batch) || true
	t1=$(date +%s.%N)
	wait "$sampler" || true
	stop_bg
	local bbps
	[[ ${b0:-} =~ ^[0-9]+$ && ${b1:-} =~ ^[0-9]+$ ]] || fail "$name: aiqosctl class counters unreadable (before '${b0:-}', after '${b1:-}')"
	bbps=$(awk -v a="${b0:-0}" -v b="${b1:-0}" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / (e - s) }')
	local l_p99 l_n l_bad l_p50 l_max
	read -r l_p99 l_n l_bad l_p50 l_max <<<"$(prio_stats "$TB_DIR/prio.loaded.tsv")"
	local lmax lmin lseries
	lseries=$(awk '{ printf "%s%.1f", sep, $1 / 1e6; sep = " " }' "$TB_DIR/prio.link.bps")
	lmax=$(sort -n "$TB_DIR/prio.link.bps" | tail -n1)
	lmin=$(sort -n "$TB_DIR/prio.link.bps" | head -n1)
	info "$name: cli0 receive rate per 1 s (Mbit/s): $lseries"
	info "$name: interactive with batch saturating $((PRIO_RATE_BPS / 1000000))Mbit (reno): $l_n/$PRIO_N requests in $(awk -v s="$t0" -v e="$t1" 'BEGIN{printf "%.2f", e-s}') s, p50 $l_p50 ms, p99 $l_p99 ms, max $l_max ms; batch $(mbit "$bbps") Mbit/s of frames meanwhile"
	if [[ $a_n != "$PRIO_N" ]]; then
		fail "$name: only $a_n of $PRIO_N interactive requests completed without load (see $TB_DIR/prio.alone.log)"
	fi
	if ge $((PRIO_RATE_BPS * 5 / 4)) "${lmax:-0}" && ge "${lmin:-0}" $((PRIO_RATE_BPS / 2)); then
		pass "$name: the egress rate held in every 1 s (min $(mbit $((${lmin:-0} / 8))), max $(mbit $((${lmax:-0} / 8))) Mbit/s)"
	else
		fail "$name: the egress rate did not hold: 1 s intervals from $(mbit $((${lmin:-0} / 8))) to $(mbit $((${lmax:-0} / 8))) Mbit/s"
	fi
	# The check: every request completed, p99 within 2x the uncontended p99 + 50 ms. A request
	# that waited behind the batch queue would take its length: 512 frames at 20 Mbit/s, 310 ms
	# (and with batch first, forever). The 50 ms absorb this 2-CPU machine's scheduling noise.
	local held=0 verdict
	if [[ $l_n == "$PRIO_N" && $l_bad == 0 ]] && awk -v l="$l_p99" -v a="$a_p99" 'BEGIN { exit !(l <= 2 * a + 50) }'; then
		held=1
	fi
	verdict="p99 $l_p99 ms over all $PRIO_N requests ($l_n completed) under load vs $a_p99 ms alone (check: all complete, <= 2x + 50 ms)"
	if [[ $expect == pass ]]; then
		if ((held)); then pass "$name: interactive first: $verdict"; else fail "$name: interactive not first: $verdict"; fi
		if ge "$bbps" $((PRIO_RATE_BPS / 8 * 7 / 10)); then
			pass "$name: batch used the rest of the link: $(mbit "$bbps") Mbit/s of frames (want >= 70%)"
		else
			fail "$name: batch got $(mbit "$bbps") Mbit/s of frames (want >= 70% of the link)"
		fi
	else
		if ((held)); then
			fail "$name: the priority check passed with the priorities inverted, so it cannot tell: $verdict"
		else
			pass "$name: the priority check fails with the priorities inverted: $verdict"
		fi
	fi
	stop_dut "$name"
	/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print("INFO: " + sys.argv[2] + ": drops by port:", {p["port"]: {k: v for k, v in p.get("drops", {}).items() if v} for p in s["ports"]})' \
		"$TB_DIR/stats.$policy.json" "$name" || true
}

# ----------------------------------------------------------------------------------------- (c)
# start_capture NS IFACE FILE: tcpdump in the background until stop_bg; waits until it listens.
start_capture() {
	local i
	ip netns exec "$1" tcpdump -i "$2" -U -n -s 128 -w "$3" >"$3.log" 2>&1 &
	BG_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		grep -q "listening on" "$3.log" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "tcpdump on $2 did not start: $(cat "$3.log")"
	return 1
}

phase_vlan() {
	start_dut marking.yaml || { fail "vlan: aiqosd start-up"; return; }
	local cap="$TB_DIR/vlan.srv0.pcap" sport=41100
	start_capture "$TB_NS_SRV" srv0 "$cap" || return
	# The server's kernel has no VLAN 100 interface: it drops the tagged request, curl times out.
	tb_cli curl -sS --http2-prior-knowledge --max-time 3 --local-port "$sport" -o /dev/null \
		-H 'x-class: tagged' -H 'content-type: application/json' \
		-d '{"model":"gpt-4o","messages":[{"role":"user","content":"tag me"}]}' \
		"$URL/v1/chat/completions" >/dev/null 2>&1 || true
	sleep 0.5
	stop_bg
	# Every frame of the connection from the client, in order: vlan id, pcp, flags, payload length.
	tshark -r "$cap" -Y "tcp.srcport == $sport" -T fields -e vlan.id -e vlan.priority -e tcp.flags.syn \
		-e tcp.len >"$TB_DIR/vlan.fields" 2>"$TB_DIR/vlan.tshark.err" || true
	/usr/bin/python3 - "$TB_DIR/vlan.fields" <<'PY' >"$TB_DIR/vlan.verdict" || true
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
first = next((i for i, r in enumerate(rows) if r[0]), None)
if first is None:
    print(f"FAIL no tagged frame among {len(rows)} frames of the connection")
    sys.exit()
tagged = rows[first:]
bad = [r for r in tagged if r[0] != "100" or r[1] != "5"]
syn = rows[0] if rows and rows[0][2] in ("1", "True") else None
pre = rows[:first]
msg = (f"{len(rows)} frames: {len(pre)} untagged before classification "
       f"(SYN {'untagged' if syn and not syn[0] else 'tagged?'}), {len(tagged)} from the request on, "
       f"{len(tagged) - len(bad)} with VLAN 100 PCP 5, first tagged carries {tagged[0][3]} payload bytes")
ok = not bad and tagged and int(tagged[0][3] or 0) > 0 and syn is not None and not syn[0]
print(("PASS " if ok else "FAIL ") + msg)
PY
	local verdict
	verdict=$(cat "$TB_DIR/vlan.verdict")
	if [[ $verdict == PASS* ]]; then pass "vlan: ${verdict#PASS }"; else fail "vlan: ${verdict#FAIL } (capture $cap)"; fi
	stop_dut vlan
}

# ----------------------------------------------------------------------------------------- (d)
phase_remark() {
	start_dut marking.yaml || { fail "remark: aiqosd start-up"; return; }
	local cap="$TB_DIR/remark.cli0.pcap"
	start_capture "$TB_NS_CLI" cli0 "$cap" || return
	curl_dl metered 2000000 "$TB_DIR/remark.dl" 30
	sleep 0.3
	stop_bg
	local code size t speed
	read -r code size t speed <"$TB_DIR/remark.dl"
	[[ $code == 200 && $size == 2000000 ]] || fail "remark: download HTTP $code $size bytes"
	# DSCP of the server's segments with payload after the request (a policer re-marks; it does
	# not slow TCP down). Node's SETTINGS may cross before the request does: that segment is in
	# the flow's class before any request (the default class, DSCP kept) and is not counted.
	local counts first
	first=$(tshark -r "$cap" -d "tcp.port==$TB_PORT,http2" -Y "tcp.dstport == $TB_PORT && http2.type == 1" \
		-T fields -e frame.number 2>/dev/null | head -1)
	counts=$(tshark -r "$cap" -Y "frame.number > ${first:-0} && tcp.srcport == $TB_PORT && tcp.len > 0" \
		-T fields -e ip.dsfield.dscp \
		2>/dev/null | sort -n | uniq -c | awk '{ printf "%s%s:%s", sep, $2, $1; sep = " " }')
	local n26 n8
	n26=$(awk -v RS=' ' -F: '$1 == 26 { print $2 }' <<<"$counts")
	n8=$(awk -v RS=' ' -F: '$1 == 8 { print $2 }' <<<"$counts")
	local remarked
	read -r _ _ _ remarked _ < <(class_counters metered) || true
	info "remark: 2 MB download at $(mbit "$speed") Mbit/s through a 1Mbit remark class; data frames by DSCP: $counts; aiqosctl remarked=$remarked"
	if [[ -n $n8 && -n $n26 ]] && ((n8 > n26)) && [[ $counts != *" "*" "* ]]; then
		pass "remark: ${n26:-0} frames DSCP 26 (within 1 Mbit/s), ${n8:-0} DSCP 8 (above it), no other DSCP"
	else
		fail "remark: data frames by DSCP '$counts' (want both 26 and 8, mostly 8, nothing else)"
	fi
	if [[ ${remarked:-0} =~ ^[0-9]+$ ]] && ((remarked > 0)); then
		pass "remark: aiqosctl classes: metered remarked=$remarked"
	else
		fail "remark: aiqosctl classes: metered remarked='${remarked:-}' (want > 0)"
	fi
	stop_dut remark
}

# ----------------------------------------------------------------------------------------- (e)
# Order on a shaped link: connections whose class changes while their frames are queued must
# arrive in order. Each of ORDER_CONNS h2c connections (order_client.js) downloads ORDER_BYTES as
# batch and, 20 ms later on the same connection, 3 KB as interactive: the connection turns
# interactive while its download waits in the batch queue, and back. 300 KB (207 frames) fit the
# 512-frame queue even in slow start, so nothing is tail-dropped: every out-of-order or
# retransmitted segment tshark finds at the far end would be the appliance's doing.
ORDER_CONNS=12
ORDER_BYTES=300000
ORDER_PORT0=42200

phase_order() {
	start_dut order.yaml --egress-rate 20Mbit || { fail "order: aiqosd start-up"; return; }
	local ns
	for ns in "$TB_NS_CLI" "$TB_NS_SRV"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control=reno || fail "order: reno in $ns"
	done
	local cap="$TB_DIR/order.cli0.pcap" ok
	start_capture "$TB_NS_CLI" cli0 "$cap" || return
	sleep 0.5 # tcpdump says it listens a moment before it sees frames
	tb_cli timeout 60 node "$HERE/order_client.js" "$TB_SRV_IP" "$TB_PORT" "$ORDER_CONNS" "$ORDER_PORT0" \
		"$ORDER_BYTES" 20 >"$TB_DIR/order.out" 2>"$TB_DIR/order.err" || true
	ok=$(grep -c '^ok$' "$TB_DIR/order.out" || true)
	sleep 1.5 # on a loaded machine tcpdump is still writing what its filter took
	stop_bg
	local filt="tcp.port >= $ORDER_PORT0 && tcp.port < $((ORDER_PORT0 + ORDER_CONNS))"
	# Out of order, or after a gap (a segment that overtook the one before it arrives after a
	# "lost" one): what reordering shows as. Retransmissions are counted for information: a
	# sender's tail-loss probe or RTO on a delay spike retransmits without anything reordered.
	local bad conns retx
	bad=$(tshark -n -r "$cap" -Y "($filt) && (tcp.analysis.out_of_order || tcp.analysis.lost_segment)" \
		-T fields -e frame.number 2>"$TB_DIR/order.tshark.err" | wc -l)
	retx=$(tshark -n -r "$cap" -Y "($filt) && (tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission)" \
		-T fields -e frame.number 2>/dev/null | wc -l)
	conns=$(tshark -n -r "$cap" -Y "($filt) && tcp.len > 0 && tcp.dstport == $TB_PORT" -T fields -e tcp.srcport 2>/dev/null | sort -u | wc -l)
	stop_dut order
	local held
	held=$(/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(sum(p.get("class_held", 0) for p in s["ports"]))' "$TB_DIR/stats.order.yaml.json" 2>/dev/null || echo "?")
	info "order: $ok of $ORDER_CONNS connections got both answers; $conns connections captured at cli0; $held frames held in their flow's earlier class; $bad frames flagged out of order or after a lost segment; $retx retransmissions (any cause)"
	if [[ $ok == "$ORDER_CONNS" && $conns == "$ORDER_CONNS" ]]; then
		pass "order: $ORDER_CONNS connections changed class (batch -> interactive -> batch) with their download queued"
	else
		fail "order: $ok of $ORDER_CONNS connections completed, $conns captured (see $TB_DIR/order.out, order.err)"
	fi
	if [[ $held =~ ^[0-9]+$ ]] && ((held > 0)); then
		pass "order: $held frames held in their flow's earlier traffic class"
	else
		fail "order: no frame held in its flow's earlier traffic class ('$held'): the class change did not happen while frames were queued"
	fi
	if [[ $bad == 0 ]]; then
		pass "order: tshark at the far end (cli0): no out-of-order segment and no gap on those connections"
	else
		fail "order: tshark at the far end (cli0): $bad segments out of order or after a gap (capture $cap)"
	fi
}

for ph in "${PHASES[@]}"; do
	case $ph in
	rate) phase_rate ;;
	priority) phase_priority priority priority.yaml pass ;;
	priority-inverted) phase_priority priority-inverted priority_inverted.yaml fail ;;
	vlan) phase_vlan ;;
	remark) phase_remark ;;
	order) phase_order ;;
	*) fail "unknown phase $ph" ;;
	esac
	# A phase that failed half-way may have left aiqosd running.
	[[ -z $TB_AIQOSD_PID ]] || tb_stop_aiqosd TERM 5 || true
done
info "requests_per_second and token_budget are not covered by this test"
