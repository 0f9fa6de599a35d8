#!/usr/bin/env bash
# End-to-end: aiqosd on a NIC shared with the kernel. Two veths carry net_af_xdp ports whose
# aiqos_steer XDP program (src/xdp) hands steered frames to aiqosd and passes the rest to the
# kernel. Needs root. Exit 0 = pass, 1 = fail, 77 = skipped (no root, no AF_XDP, no PMD).
#
# usage: xdp_steer_test.sh AIQOSD_BIN XDP_OBJ
#
#   cli0 198.18.0.1 ──veth── aq-cli ┐  <p>-dut: br0 198.18.0.3 (kernel bridge, bypass service :9090)
#                                   ├─ aiqosd: net_af_xdp0 (aq-cli) <-> net_af_xdp1 (aq-srv)
#   srv0 198.18.0.2 ──veth── aq-srv ┘
#
# Steered frames (TCP port 8080, or the prefix 198.18.0.2/32) cross aiqosd; everything else --
# ARP, ICMP, the bypass ports -- is XDP_PASS and the kernel bridge forwards it or the dut's own
# stack answers it. Checks: inference requests through aiqosd succeed and are counted (stats
# JSON, equal to what the program steered); bypass traffic (to the dut itself and across the
# bridge) works and is not counted; after SIGTERM no XDP program is left; after SIGKILL the
# stale program keeps failing open to the kernel, and the next aiqosd detaches it.
#
# Environment: AIQOS_E2E_OUT (logs; default tests/e2e/out), AIQOS_KEEP_LOGS=1, AIQOS_TB_PREFIX.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 2 2 "$@"
AIQOSD=$(realpath "$1")
XDP_OBJ=$(realpath "$2")
PY=/usr/bin/python3

e2e_need_root "network namespaces, XDP"
[[ -r $XDP_OBJ ]] || e2e_skip "no XDP object $XDP_OBJ (clang -target bpf missing at build time?)"
ls /usr/lib/*/dpdk/pmds-*/librte_net_af_xdp.so* >/dev/null 2>&1 ||
	e2e_skip "DPDK has no net_af_xdp PMD (librte_net_af_xdp.so)"
# AF_XDP sockets: the kernel needs CONFIG_XDP_SOCKETS (socket() says EAFNOSUPPORT without it).
if ! err=$($PY -c 'import socket; socket.socket(44, socket.SOCK_RAW, 0).close()' 2>&1); then
	e2e_skip "kernel without AF_XDP sockets (CONFIG_XDP_SOCKETS): ${err##*: }"
fi

e2e_testbed xdp_steer aq
TB_DUT_IP=198.18.0.3
BYPASS_DUT_PORT=9090 # a service of the dut itself, on br0
BYPASS_SRV_PORT=9091 # a service behind the dut, reached through the kernel bridge
URL="http://$TB_SRV_IP:$TB_PORT"

# XDP programs attached to the dut's veths, as `ip link` reports them ("aq-cli:aiqos_steer ...").
xdp_attached() {
	local ifc out=
	for ifc in aq-cli aq-srv; do
		if tb_dut ip -d link show dev "$ifc" | grep -qE 'prog/xdp|xdpgeneric|xdpdrv| xdp '; then
			out+="$ifc:$(tb_dut ip -d link show dev "$ifc" | sed -nE 's/.*prog\/xdp id ([0-9]+) name ([^ ]+).*/\2(id \1)/p') "
		fi
	done
	echo "$out"
}

# start_aiqosd NAME [aiqos options]: runs aiqosd in the dut namespace on net_af_xdp vdevs with the
# steering program; waits until it has filled the steering maps. Log: $TB_DIR/aiqosd.NAME.log.
start_aiqosd() {
	local name=$1 i
	shift
	local log="$TB_DIR/aiqosd.$name.log"
	ip netns exec "$TB_NS_DUT" stdbuf -oL -eL "$AIQOSD" -l "$TB_EAL_LCORES" --no-huge -m "$TB_EAL_MEM_MB" \
		--no-pci --file-prefix "$TB_PREFIX" --log-level=lib.eal:notice \
		--vdev "net_af_xdp0,iface=aq-cli,xdp_prog=$XDP_OBJ" --vdev "net_af_xdp1,iface=aq-srv,xdp_prog=$XDP_OBJ" \
		-- --stats-interval 0 --stats-json "$TB_DIR/stats.$name.json" "$@" >"$log" 2>&1 </dev/null &
	TB_AIQOSD_PID=$!
	for ((i = 0; i < 100; i++)); do
		if [[ $(grep -c 'aiqos_steer program id .* steers' "$log") == 2 ]]; then
			info "aiqosd ($name, pid $TB_AIQOSD_PID) steering: $(xdp_attached)"
			return 0
		fi
		tb_pid_alive "$TB_AIQOSD_PID" || break
		sleep 0.1
	done
	fail "aiqosd ($name) did not configure XDP steering on both ports; see $log"
	return 1
}

# ---- testbed: the dut's kernel bridges what aiqosd does not take ----
tb_up || { fail "testbed set-up"; exit 1; }
tb_dut ip link add br0 type bridge
tb_dut ip link set br0 type bridge stp_state 0 forward_delay 0
tb_dut ip link set aq-cli master br0
tb_dut ip link set aq-srv master br0
tb_dut ip link set br0 up
tb_dut ip link set lo up
tb_dut ip addr add "$TB_DUT_IP/24" dev br0
tb_wait_forwarding "$TB_WAIT_S" || { fail "kernel bridge in the dut does not forward"; exit 1; }

tb_start_h2c_server node || { fail "h2c server start-up"; exit 1; }
mkdir -p "$TB_DIR/www-dut" "$TB_DIR/www-srv"
echo "served by the dut kernel" >"$TB_DIR/www-dut/hello.txt"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$TB_DIR/www-srv/blob.bin"
tb_dut $PY -m http.server --bind "$TB_DUT_IP" --directory "$TB_DIR/www-dut" "$BYPASS_DUT_PORT" \
	>"$TB_DIR/http-dut.log" 2>&1 </dev/null &
tb_srv $PY -m http.server --bind "$TB_SRV_IP" --directory "$TB_DIR/www-srv" "$BYPASS_SRV_PORT" \
	>"$TB_DIR/http-srv.log" 2>&1 </dev/null &
for ((i = 0; i < 50; i++)); do
	tb_dut curl -sf -o /dev/null --max-time 1 "http://$TB_DUT_IP:$BYPASS_DUT_PORT/hello.txt" &&
		tb_srv curl -sf -o /dev/null --max-time 1 "http://$TB_SRV_IP:$BYPASS_SRV_PORT/blob.bin" && break
	sleep 0.1
done

chat() { # chat NAME MODEL: one h2c chat completion from the client; PASS/FAIL
	local code
	code=$(tb_cli curl -sS --max-time 10 --http2-prior-knowledge -o "$TB_DIR/curl.$1.out" \
		-w '%{http_code} %{http_version}' -H 'content-type: application/json' \
		-d "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8}" \
		"$URL/v1/chat/completions" 2>"$TB_DIR/curl.$1.err") || true
	if [[ $code == "200 2" ]] && grep -q "\"model\":\"$2\"" "$TB_DIR/curl.$1.out"; then
		pass "$1: h2c chat completion for $2 (HTTP/2 200)"
	else
		fail "$1: got '$code' $(head -c 200 "$TB_DIR/curl.$1.err")"
	fi
}

bypass() { # bypass NAME: both bypass services answer
	local got sum want
	got=$(tb_cli curl -sS --max-time 10 "http://$TB_DUT_IP:$BYPASS_DUT_PORT/hello.txt" 2>&1) || true
	if [[ $got == "served by the dut kernel" ]]; then
		pass "$1: bypass port $BYPASS_DUT_PORT answered by the dut's own kernel stack"
	else
		fail "$1: bypass port $BYPASS_DUT_PORT on the dut: '$got'"
	fi
	want=$(sha256sum <"$TB_DIR/www-srv/blob.bin" | cut -d' ' -f1)
	sum=$(tb_cli curl -sS --max-time 20 "http://$TB_SRV_IP:$BYPASS_SRV_PORT/blob.bin" 2>/dev/null |
		sha256sum | cut -d' ' -f1) || true
	if [[ $sum == "$want" ]]; then
		pass "$1: 2 MiB from bypass port $BYPASS_SRV_PORT behind the dut, byte-exact (kernel bridge)"
	else
		fail "$1: bypass download from $TB_SRV_IP:$BYPASS_SRV_PORT: sha256 $sum, want $want"
	fi
}

# check_counts NAME: what aiqosd received on each port equals what the XDP program steered there
# (minus frames the AF_XDP ring dropped, imissed), and the kernel got the rest.
check_counts() {
	local name=$1
	$PY - "$TB_DIR/stats.$name.json" "$TB_DIR/aiqosd.$name.log" "${@:2}" <<'PY'
import json, re, sys
stats, log = sys.argv[1], sys.argv[2]
want = dict(a.split("=") for a in sys.argv[3:])
ports = {p["name"]: p for p in json.load(open(stats))["ports"]}
xdp = {}
for m in re.finditer(r"xdp: (\S+): steered to aiqosd by port (\d+), by VLAN (\d+), by prefix (\d+) "
                     r"\(of which (\d+) had no socket and went to the kernel\); passed to the kernel (\d+)",
                     open(log).read()):
    xdp[m.group(1)] = [int(x) for x in m.groups()[1:]]
ok = True
def check(cond, msg):
    global ok
    print(("PASS: " if cond else "FAIL: ") + msg)
    ok &= cond
for ifc, pmd in (("aq-cli", "net_af_xdp0"), ("aq-srv", "net_af_xdp1")):
    if ifc not in xdp or pmd not in ports:
        check(False, f"{ifc}: no XDP counters in the log or no port {pmd} in the stats JSON")
        continue
    by_port, by_vlan, by_prefix, no_sock, passed = xdp[ifc]
    p = ports[pmd]
    steered = by_port + by_vlan + by_prefix - no_sock
    check(p["rx_packets"] + p["imissed"] == steered and steered > 0,
          f"{ifc}: aiqosd counted rx {p['rx_packets']} (+{p['imissed']} missed) = {steered} frames "
          f"the program steered (port {by_port}, prefix {by_prefix}); the {passed} it passed "
          f"to the kernel are not counted")
    check(p["rx_packets"] >= int(want.get("min_rx", 1)),
          f"{ifc}: rx {p['rx_packets']} >= {want.get('min_rx', 1)}")
    check(passed >= int(want.get("min_pass_" + ifc, 0)),
          f"{ifc}: {passed} frames went to the kernel (>= {want.get('min_pass_' + ifc, 0)}: bypass traffic)")
    for k, v in (("port", by_port), ("prefix", by_prefix)):
        if f"max_by_{k}" in want:
            check(v <= int(want[f"max_by_{k}"]), f"{ifc}: steered by {k} {v} <= {want[f'max_by_{k}']}")
sys.exit(0 if ok else 1)
PY
}

stop_aiqosd() { # stop_aiqosd NAME: SIGTERM, exit 0, no XDP program left
	local rc=0 left
	tb_stop_aiqosd TERM 5 || rc=$?
	[[ $rc == 0 ]] && pass "$1: aiqosd exited 0 after SIGTERM" || fail "$1: aiqosd exit $rc after SIGTERM"
	left=$(xdp_attached)
	[[ -z $left ]] && pass "$1: no XDP program left on aq-cli/aq-srv after exit (ip link)" ||
		fail "$1: XDP program still attached after exit: $left"
	# net_af_xdp (22.11) lends each queue's fill ring, 2048 mbufs, to the kernel and does not take
	# them back when the port closes; frames still awaiting TX completion stay with it too. More
	# than that would be aiqosd's own leak.
	local inuse
	inuse=$(sed -n 's/^mbufs in use at exit: //p' "$TB_DIR/aiqosd.$1.log")
	if [[ $inuse =~ ^[0-9]+$ ]] && ((inuse <= 2 * 2048 + 2 * 64)); then
		pass "$1: mbufs in use at exit $inuse <= 2 x 2048 held by net_af_xdp's fill rings + 2 x 64 TX in flight"
	else
		fail "$1: mbufs in use at exit: '${inuse}' (more than net_af_xdp's fill rings hold)"
	fi
}

# ---- 1. steering by TCP port ----
info "phase ports: --xdp-steer-ports 8080"
start_aiqosd ports --xdp-steer-ports 8080 || exit 1
chat ports-gpt4o gpt-4o
chat ports-llama llama-3.1-8b-instruct
printf '%s' '{"model":"llama-3.1-8b-instruct","messages":[{"role":"user","content":"Hello"}],"max_tokens":8}' \
	>"$TB_DIR/body.json"
h2_rc=0
timeout 120 ip netns exec "$TB_NS_CLI" h2load -n 2000 -c 4 -m 8 -T 30 -H 'content-type: application/json' \
	-d "$TB_DIR/body.json" "$URL/v1/chat/completions" >"$TB_DIR/h2load.log" 2>&1 || h2_rc=$?
if tb_parse_h2load "$TB_DIR/h2load.log" && [[ $H2_SUCCEEDED == 2000 && $H2_2XX == 2000 ]]; then
	pass "ports: h2load 2000 requests through aiqosd, all 2xx (${H2_REQPS} req/s)"
else
	fail "ports: h2load: succeeded ${H2_SUCCEEDED:-?}/2000, 2xx ${H2_2XX:-?} (exit $h2_rc)"
fi
bypass ports
if tb_cli ping -c2 -i0.2 -W1 -q "$TB_SRV_IP" >/dev/null 2>&1; then
	pass "ports: ICMP cli->srv through the kernel bridge (not steered)"
else
	fail "ports: ping cli->srv failed"
fi
stop_aiqosd ports
# h2load's 2000 multiplexed requests take a few hundred frames each way; the 2 MiB bypass download
# is > 1400 frames towards the client, all of which must have gone to the kernel on aq-srv.
check_counts ports min_rx=200 min_pass_aq-srv=1400 max_by_prefix=0 || FAILS=$((FAILS + 1))

# ---- 2. steering by prefix; crash and recovery ----
info "phase prefix: --xdp-steer-prefixes 198.18.0.2/32 (everything to or from the server)"
start_aiqosd prefix --xdp-steer-prefixes "$TB_SRV_IP/32" || exit 1
chat prefix-gpt4o gpt-4o
if tb_cli ping -c5 -i0.2 -W1 -q "$TB_SRV_IP" >/dev/null 2>&1; then
	pass "prefix: ICMP cli->srv through aiqosd (steered by prefix)"
else
	fail "prefix: ping cli->srv through aiqosd failed"
fi
got=$(tb_cli curl -sS --max-time 10 "http://$TB_DUT_IP:$BYPASS_DUT_PORT/hello.txt" 2>&1) || true
[[ $got == "served by the dut kernel" ]] && pass "prefix: the dut's own service (not in the prefix) still answers" ||
	fail "prefix: dut service: '$got'"

kill -KILL "$TB_AIQOSD_PID"
wait "$TB_AIQOSD_PID" 2>/dev/null || true
TB_AIQOSD_PID=
left=$(xdp_attached)
if [[ $left == *aiqos_steer* ]]; then
	pass "crash: after SIGKILL the program stays attached ($left)"
else
	fail "crash: expected a stale aiqos_steer after SIGKILL, ip link shows '$left'"
fi
# With its sockets gone the stale program passes steered frames to the kernel, here the bridge.
chat crash-fail-open gpt-4o
rm -rf "/var/run/dpdk/$TB_PREFIX"

start_aiqosd restart --xdp-steer-prefixes "$TB_SRV_IP/32" || exit 1
if grep -q 'detached a stale aiqos_steer' "$TB_DIR/aiqosd.restart.log"; then
	pass "restart: aiqosd detached the stale program before its ports came up"
else
	fail "restart: no 'detached a stale aiqos_steer' in the log"
fi
chat restart-llama llama-3.1-8b-instruct
tb_cli ping -c3 -i0.2 -W1 -q "$TB_SRV_IP" >/dev/null 2>&1 || fail "restart: ping cli->srv"
stop_aiqosd restart
check_counts restart min_rx=10 max_by_port=0 || FAILS=$((FAILS + 1))
