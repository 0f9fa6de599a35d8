#!/usr/bin/env bash
# Fault: a port whose link goes down and comes back. aiqosd (af_packet on two veths) in the
# testbed; h2c server in the server namespace. Needs root. Exit 0 = pass, 1 = fail, 77 = skipped.
#
# usage: link_flap_test.sh AIQOSD_BIN AIQOSCTL_BIN
#
#   port-down  aiqosd's own port toward the server (aq-srv) is set down, and the client sends
#              BLAST UDP datagrams to the server: the kernel sends nothing on a down interface, so
#              the frames fill the port's af_packet TX ring (512 slots) and every further one is
#              refused and counted under ports[1].drops.tx_full. aiqosd keeps running. Up again:
#              the ring drains, ping and an h2c request through aiqosd succeed.
#   far-down   the server's end (srv0) is set down: aq-srv loses carrier. The kernel drops what
#              it takes from the TX ring (aq-srv tx_dropped, printed), the ring fills, the rest is
#              refused: every frame aiqosd received is either taken by port 1 or counted as a
#              drop. Up again: ping and an h2c request succeed.
#   At exit: aiqosd exits 0 after SIGTERM, every mbuf is back, and no drop of any other reason.
# Counts are asserted, not timings: every wait is a bounded poll.
#
# Environment: AIQOS_E2E_OUT (logs; default tests/e2e/out), AIQOS_KEEP_LOGS=1 (keep logs after a
# pass), AIQOS_TB_PREFIX (namespace prefix; default fltlf<pid>).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 2 2 "$@"
AIQOSD=$(realpath "$1")
AIQOSCTL=$(realpath "$2")
e2e_need curl node ethtool /usr/bin/python3
e2e_testbed link_flap fltlf

PY=/usr/bin/python3
URL="http://$TB_SRV_IP:$TB_PORT"
CTL_SOCK="$TB_DIR/ctl.sock"
RING=512   # af_packet TX ring slots (framecnt) of each port
BLAST=1000 # UDP datagrams sent while a link is down

ctl() { "$AIQOSCTL" --socket "$CTL_SOCK" --timeout 5 "$@"; }
# counters: "port0_rx port1_tx port1_drops" now (aiqosctl status).
counters() {
	ctl --json status | "$PY" -c '
import json, sys
p = json.load(sys.stdin)["ports"]
print(p[0]["rx_packets"], p[1]["tx_packets"], p[1]["drops"])'
}
# settled: counters once every frame port 0 received has left port 1 or been dropped there
# (port 0 rx == port 1 tx + drops, the frames in flight inside aiqosd are done); bounded poll.
settled() {
	local i rx tx dr
	for ((i = 0; i < 50; i++)); do
		read -r rx tx dr < <(counters)
		((rx == tx + dr)) && break
		sleep 0.1
	done
	echo "$rx $tx $dr"
}
kstat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
# blast N: N UDP datagrams from the client to the server's discard port, CHUNK at a time; after
# each chunk, waits (bounded) until aiqosd has received all of it, so that its af_packet RX ring
# (512 slots) never overflows: a kernel drop there would be invisible to aiqosd.
CHUNK=200
blast() {
	local left=$1 n rx want i
	read -r rx _ _ < <(counters)
	while ((left > 0)); do
		n=$((left < CHUNK ? left : CHUNK))
		tb_cli "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b"x" * 100, (sys.argv[2], 9))' "$n" "$TB_SRV_IP"
		want=$((rx + n))
		for ((i = 0; i < 100; i++)); do
			read -r rx _ _ < <(counters)
			((rx >= want)) && break
			sleep 0.1
		done
		((rx >= want)) || { fail "blast: aiqosd received $rx frames on port 0, want $want"; return 1; }
		left=$((left - n))
	done
}
# ping_back WHAT: a ping cli->srv through aiqosd succeeds within 40 tries.
ping_back() {
	local i
	for ((i = 0; i < 40; i++)); do
		if tb_cli ping -c1 -W1 -q "$TB_SRV_IP" >/dev/null 2>&1; then
			pass "$1: ping cli->srv through aiqosd again (after $i failed tries)"
			return 0
		fi
		sleep 0.2
	done
	fail "$1: no ping cli->srv through aiqosd after 40 tries"
}
# h2c_ok WHAT: an h2c chat request through aiqosd gets 200.
h2c_ok() {
	local code
	code=$(tb_cli curl -sS --max-time 10 --http2-prior-knowledge -o /dev/null -w '%{http_code}' \
		-H 'content-type: application/json' -d '{"model":"gpt-4o","messages":[]}' \
		"$URL/v1/chat/completions" 2>"$TB_DIR/curl.err") || true
	if [[ $code == 200 ]]; then pass "$1: h2c request through aiqosd: 200"; else fail "$1: h2c request: HTTP '$code'"; fi
}
alive() {
	if tb_pid_alive "$TB_AIQOSD_PID"; then pass "$1: aiqosd still running"; else fail "$1: aiqosd exited"; fi
}

tb_up || { fail "testbed set-up"; exit 1; }
tb_start_aiqosd "$AIQOSD" --stats-interval 0 --stats-json "$TB_DIR/stats.json" --ctl-socket "$CTL_SOCK" \
	--prometheus none || { fail "aiqosd start-up: no ping cli->srv through it"; exit 1; }
pass "ping cli->srv through aiqosd"
tb_start_h2c_server node || { fail "h2c server start-up"; exit 1; }
h2c_ok "before"
# The datagrams below must all reach aiqosd whatever happens beyond it: a permanent neighbour
# entry, so the client's kernel never holds them back waiting for an ARP reply that cannot come.
tb_cli ip neigh replace "$TB_SRV_IP" lladdr "$(tb_srv cat /sys/class/net/srv0/address)" dev cli0 nud permanent

# ---- port-down: aiqosd's own port goes down ----
read -r rx0 tx0 dr0 < <(settled)
tb_dut ip link set aq-srv down
blast "$BLAST"
read -r rx1 tx1 dr1 < <(settled)
drx=$((rx1 - rx0)) dtx=$((tx1 - tx0)) ddr=$((dr1 - dr0))
info "port-down: port 0 received $drx frames; port 1 took $dtx, refused $ddr"
if ((drx >= BLAST && dtx + ddr == drx && rx1 == tx1 + dr1)); then
	pass "port-down: every frame received accounted for: $dtx taken by port 1 + $ddr dropped == $drx"
else
	fail "port-down: received $drx (want >= $BLAST), port 1 took $dtx + dropped $ddr (want == received)"
fi
# Frames other than the datagrams (a late ACK of the h2c request, ARP) may have crossed just
# before the link went down: at most drx - BLAST of them.
extra=$((drx - BLAST))
if ((dtx <= RING + extra && ddr >= BLAST - RING)); then
	pass "port-down: the TX ring took at most its $RING slots ($dtx, $extra other frames), the rest was refused and counted ($ddr)"
else
	fail "port-down: port 1 took $dtx (want <= $RING + $extra), dropped $ddr (want >= $((BLAST - RING)))"
fi
if tb_cli ping -c1 -W1 -q "$TB_SRV_IP" >/dev/null 2>&1; then
	fail "port-down: ping went through a down port"
else
	pass "port-down: no ping while aq-srv is down"
fi
alive "port-down"
tb_dut ip link set aq-srv up
ping_back "port-down"
h2c_ok "port-down"

# ---- far-down: the server's end goes down, aq-srv loses carrier ----
read -r rx0 tx0 dr0 < <(settled)
kd0=$(kstat "$TB_NS_DUT" aq-srv tx_dropped)
tb_srv ip link set srv0 down
blast "$BLAST"
alive "far-down"
read -r rx1 tx1 dr1 < <(settled)
kd1=$(kstat "$TB_NS_DUT" aq-srv tx_dropped)
drx=$((rx1 - rx0)) dtx=$((tx1 - tx0)) ddr=$((dr1 - dr0))
info "far-down: port 0 received $drx frames; port 1 took $dtx, refused $ddr; the kernel dropped $((kd1 - kd0)) on aq-srv"
if ((drx >= BLAST && dtx + ddr == drx && rx1 == tx1 + dr1)); then
	pass "far-down: every frame received accounted for: $dtx taken by port 1 + $ddr dropped == $drx"
else
	fail "far-down: received $drx (want >= $BLAST), port 1 took $dtx + dropped $ddr (want == received)"
fi
tb_srv ip link set srv0 up
ping_back "far-down"
h2c_ok "far-down"

# ---- stop; the counters ----
stop_rc=0
tb_stop_aiqosd TERM 5 || stop_rc=$?
if [[ $stop_rc == 0 ]]; then pass "aiqosd exited 0 after SIGTERM"; else fail "aiqosd exit $stop_rc after SIGTERM"; fi
if "$PY" - "$TB_DIR/stats.json" "$BLAST" "$RING" <<'PY'; then
import json, sys
st = json.load(open(sys.argv[1], encoding="utf-8"))
blast, ring = int(sys.argv[2]), int(sys.argv[3])
ok = True
def check(cond, msg):
    global ok
    print(("PASS: " if cond else "FAIL: ") + msg)
    ok = ok and cond
ports = st["ports"]
full = ports[1]["drops"]["tx_full"]
check(full >= blast - ring, f"port-down: ports[1].drops.tx_full {full} >= {blast} - {ring} (the ring full, the rest refused)")
others = {f"port{p['port']}.{k}": v for p in ports for k, v in p["drops"].items() if v and not (p["port"] == 1 and k == "tx_full")}
check(not others, f"no drop of another reason: {others or '{}'}")
check(st["mbufs_in_use_at_exit"] == 0, f"mbufs in use at exit {st['mbufs_in_use_at_exit']} == 0")
print(f"INFO: port 0 rx {ports[0]['rx_packets']} tx {ports[0]['tx_packets']}; port 1 rx {ports[1]['rx_packets']} "
      f"tx {ports[1]['tx_packets']} tx_full {full}")
sys.exit(0 if ok else 1)
PY
	:
else
	FAILS=$((FAILS + 1))
fi
