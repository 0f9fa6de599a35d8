# shellcheck shell=bash
# aiqos network-namespace testbed. Source it; do not run it.
#
#   <p>-cli  cli0 198.18.0.1/24 fd00:198:18::1/64 ──veth── aq-cli ┐
#                                                               ├─ <p>-dut: aiqosd (af_packet on
#   <p>-srv  srv0 198.18.0.2/24 fd00:198:18::2/64 ──veth── aq-srv ┘   both, or a bridge stand-in)
#
# The dut ends carry no address and have IPv6 disabled, so the kernel never sends on them: every
# frame seen by cli0/srv0 went through the device under test. No static ARP: ARP must cross it too.
# Offloads are off on all four ends so each frame on the wire is a real <=1514-byte frame with a
# finished checksum.
#
# Functions (all need root):
#   tb_up                       create namespaces, links, addresses
#   tb_down                     kill what was started in the namespaces, delete them (idempotent)
#   tb_start_aiqosd BIN [ARGS]  run aiqosd in <p>-dut, ARGS go after "--"; waits for cli->srv ping
#   tb_stop_aiqosd [SIG]        signal aiqosd (TERM), wait for it, return its exit status
#   tb_start_bridge             stand-in for aiqosd: a Linux bridge joining aq-cli and aq-srv
#   tb_start_testpmd [BIN]      stand-in for aiqosd: dpdk-testpmd io forwarding on the same vdevs
#   tb_start_h2c_server [node|nghttpd]  h2c server on 198.18.0.2:8080 in <p>-srv
#   tb_cli CMD...  tb_srv CMD...  tb_dut CMD...   run a command in that namespace
#
# Variables: AIQOS_TB_PREFIX (namespace prefix, default aq<pid>), TB_DIR (state and logs,
# default a fresh mktemp dir), TB_WAIT_S (forwarding wait, default 20),
# TB_EAL_LCORES (default 0,1), TB_EAL_MEM_MB (default 512), TB_KEEP=1 keeps a TB_DIR that
# tb_up created.
# Only 198.18.0.0/15 and fd00:198:18::/64 are used.

TB_PREFIX=${AIQOS_TB_PREFIX:-aq$$}
TB_NS_CLI="${TB_PREFIX}-cli"
TB_NS_SRV="${TB_PREFIX}-srv"
TB_NS_DUT="${TB_PREFIX}-dut"
TB_CLI_IP=198.18.0.1
TB_SRV_IP=198.18.0.2
TB_CLI_IP6=fd00:198:18::1
TB_SRV_IP6=fd00:198:18::2
TB_PORT=8080
TB_WAIT_S=${TB_WAIT_S:-20}
TB_EAL_LCORES=${TB_EAL_LCORES:-0,1}
TB_EAL_MEM_MB=${TB_EAL_MEM_MB:-512}
TB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TB_REPO_DIR=$(cd "$TB_LIB_DIR/../.." && pwd)
TB_DIR=${TB_DIR:-}
TB_DIR_OWNED=0
TB_KEEP=${TB_KEEP:-0}
TB_AIQOSD_PID=
TB_SERVER_PID=

tb_log() { printf '[testbed] %s\n' "$*" >&2; }
tb_die() { printf '[testbed] ERROR: %s\n' "$*" >&2; return 1; }

# True while PID runs. A zombie counts as gone: inside a trap handler bash may not have reaped
# its child yet, and kill -0 succeeds on zombies.
tb_pid_alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $st && $st != Z* ]]
}

tb_cli() { ip netns exec "$TB_NS_CLI" "$@"; }
tb_srv() { ip netns exec "$TB_NS_SRV" "$@"; }
tb_dut() { ip netns exec "$TB_NS_DUT" "$@"; }

# Turn off every offload that would let a frame on the wire differ from what a NIC would carry.
# veth refuses some features; each is tried on its own.
tb_offloads_off() {
	local ns=$1 ifc=$2 f
	for f in tx rx tso gso gro lro sg ufo rx-gro-list rx-udp-gro-forwarding tx-udp-segmentation; do
		ip netns exec "$ns" ethtool -K "$ifc" "$f" off >/dev/null 2>&1 || true
	done
}

# Commands the testbed and its tests use, with the Debian 12 package that provides each.
TB_DEPS=(ip:iproute2 ethtool:ethtool ping:iputils-ping curl:curl h2load:nghttp2-client
	node:nodejs stdbuf:coreutils sha256sum:coreutils)

# tb_check_deps [CMD:PACKAGE...]: the testbed's own commands plus the caller's.
tb_check_deps() {
	local d missing=()
	for d in "${TB_DEPS[@]}" "$@"; do
		[[ -n $d ]] || continue
		command -v "${d%%:*}" >/dev/null 2>&1 || missing+=("${d#*:}")
	done
	((${#missing[@]} == 0)) || tb_die "missing commands; apt-get install ${missing[*]}"
}

tb_up() {
	local ns
	[[ $(id -u) == 0 ]] || tb_die "the testbed needs root" || return 1
	tb_check_deps "" || return 1
	if [[ -z $TB_DIR ]]; then
		TB_DIR=$(mktemp -d "/tmp/aiqos-tb.${TB_PREFIX}.XXXXXX")
		TB_DIR_OWNED=1
	fi
	mkdir -p "$TB_DIR"
	for ns in "$TB_NS_CLI" "$TB_NS_SRV" "$TB_NS_DUT"; do
		if tb_ns_exists "$ns"; then
			tb_die "namespace $ns exists already (another run with prefix $TB_PREFIX? set AIQOS_TB_PREFIX)" || return 1
		fi
	done
	ip netns add "$TB_NS_DUT" || return 1
	ip netns add "$TB_NS_CLI" || return 1
	ip netns add "$TB_NS_SRV" || return 1

	# The dut namespace must not originate anything: IPv6 off before the links arrive, so they
	# never get a link-local address and never send RS/MLD/DAD.
	tb_dut sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || return 1

	# Both ends are created directly inside their namespaces: no name ever exists in the root
	# namespace, so parallel testbeds cannot collide on interface names.
	ip link add cli0 netns "$TB_NS_CLI" type veth peer name aq-cli netns "$TB_NS_DUT" || return 1
	ip link add srv0 netns "$TB_NS_SRV" type veth peer name aq-srv netns "$TB_NS_DUT" || return 1

	local ifc
	for ifc in aq-cli aq-srv; do
		tb_dut sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || return 1
		tb_dut ip link set "$ifc" mtu 1500 promisc on up || return 1
		tb_offloads_off "$TB_NS_DUT" "$ifc"
	done
	tb_offloads_off "$TB_NS_CLI" cli0
	tb_offloads_off "$TB_NS_SRV" srv0

	tb_dut ip link set lo up  # aiqosctl and Prometheus reach aiqosd on loopback
	tb_cli ip link set lo up
	tb_srv ip link set lo up
	tb_cli ip link set cli0 mtu 1500 up || return 1
	tb_srv ip link set srv0 mtu 1500 up || return 1
	tb_cli ip addr add "$TB_CLI_IP/24" dev cli0 || return 1
	tb_srv ip addr add "$TB_SRV_IP/24" dev srv0 || return 1
	tb_cli ip -6 addr add "$TB_CLI_IP6/64" dev cli0 nodad || return 1
	tb_srv ip -6 addr add "$TB_SRV_IP6/64" dev srv0 nodad || return 1
	tb_log "up: prefix=$TB_PREFIX dir=$TB_DIR"
}

tb_ns_exists() { [[ -e /run/netns/$1 ]]; }

# Kill every process in namespace $1: they were all started by this testbed.
tb_kill_ns_pids() {
	local ns=$1 pids i
	tb_ns_exists "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[[ -n $pids ]] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[[ -n $pids ]] || return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	sleep 0.2
}

tb_down() {
	local ns
	for ns in "$TB_NS_CLI" "$TB_NS_SRV" "$TB_NS_DUT"; do
		tb_kill_ns_pids "$ns"
	done
	# Reap our own background children so no zombie holds a namespace.
	if [[ -n $TB_AIQOSD_PID ]]; then wait "$TB_AIQOSD_PID" 2>/dev/null || true; fi
	if [[ -n $TB_SERVER_PID ]]; then wait "$TB_SERVER_PID" 2>/dev/null || true; fi
	TB_AIQOSD_PID=
	TB_SERVER_PID=
	for ns in "$TB_NS_CLI" "$TB_NS_SRV" "$TB_NS_DUT"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	# DPDK's runtime dir for our file prefix.
	rm -rf "/var/run/dpdk/$TB_PREFIX" 2>/dev/null || true
	# A directory tb_up made is removed unless TB_KEEP=1; a caller-given TB_DIR is the caller's.
	if [[ $TB_DIR_OWNED == 1 && $TB_KEEP != 1 && -n $TB_DIR ]]; then
		rm -rf "$TB_DIR"
		TB_DIR_OWNED=0
	elif [[ $TB_DIR_OWNED == 1 ]]; then
		tb_log "logs kept in $TB_DIR"
	fi
	return 0
}

# Wait until 198.18.0.2 answers from the client namespace (ARP and ICMP both cross the dut).
tb_wait_forwarding() {
	local tries=${1:-$TB_WAIT_S} i
	for ((i = 0; i < tries; i++)); do
		if tb_cli ping -c1 -W1 -q "$TB_SRV_IP" >/dev/null 2>&1; then
			return 0
		fi
		if [[ -n $TB_AIQOSD_PID ]] && ! tb_pid_alive "$TB_AIQOSD_PID"; then
			tb_die "the dut process exited during start-up; see its log in $TB_DIR" || return 1
		fi
		sleep 0.2
	done
	tb_die "no forwarding between cli and srv after $tries tries"
}

# tb_start_aiqosd BIN [aiqos options...]; stdout+stderr go to $TB_DIR/aiqosd.log.
tb_start_aiqosd() {
	local bin=$1
	shift
	[[ -x $bin ]] || tb_die "aiqosd binary not executable: $bin" || return 1
	# --file-prefix keeps DPDK's runtime files apart from other runs; --no-huge so no
	# hugepage setup is needed.
	TB_AIQOSD_EAL=(-l "$TB_EAL_LCORES" --no-huge -m "$TB_EAL_MEM_MB" --no-pci
		--file-prefix "$TB_PREFIX" --log-level=lib.eal:notice
		--vdev "net_af_packet0,iface=aq-cli,qpairs=1"
		--vdev "net_af_packet1,iface=aq-srv,qpairs=1")
	tb_log "aiqosd ${TB_AIQOSD_EAL[*]} -- $*"
	ip netns exec "$TB_NS_DUT" stdbuf -oL -eL "$bin" "${TB_AIQOSD_EAL[@]}" -- "$@" \
		>"$TB_DIR/aiqosd.log" 2>&1 </dev/null &
	TB_AIQOSD_PID=$!
	tb_wait_forwarding "$TB_WAIT_S" || return 1
	tb_log "aiqosd forwarding (pid $TB_AIQOSD_PID)"
}

# tb_stop_aiqosd [SIGNAL] [TIMEOUT_S]: returns aiqosd's exit status (124 if it had to be killed).
tb_stop_aiqosd() {
	local sig=${1:-TERM} timeout=${2:-5} i rc=0
	[[ -n $TB_AIQOSD_PID ]] || return 0
	kill "-$sig" "$TB_AIQOSD_PID" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		tb_pid_alive "$TB_AIQOSD_PID" || break
		sleep 0.1
	done
	if tb_pid_alive "$TB_AIQOSD_PID"; then
		tb_log "aiqosd did not exit ${timeout}s after SIG$sig; killing it"
		kill -KILL "$TB_AIQOSD_PID" 2>/dev/null || true
		wait "$TB_AIQOSD_PID" 2>/dev/null || true
		TB_AIQOSD_PID=
		return 124
	fi
	wait "$TB_AIQOSD_PID" || rc=$?
	TB_AIQOSD_PID=
	return "$rc"
}

# Stand-in for aiqosd while developing: a plain bridge in the dut namespace.
tb_start_bridge() {
	tb_dut ip link add br0 type bridge || return 1
	tb_dut sysctl -qw net.ipv6.conf.br0.disable_ipv6=1 2>/dev/null || true
	tb_dut ip link set br0 type bridge stp_state 0 forward_delay 0 || return 1
	tb_dut ip link set aq-cli master br0 || return 1
	tb_dut ip link set aq-srv master br0 || return 1
	tb_dut ip link set br0 up || return 1
	tb_wait_forwarding "$TB_WAIT_S" || return 1
	tb_log "bridge stand-in forwarding"
}

# Second stand-in, to check the af_packet path itself: dpdk-testpmd in io forwarding mode pairs
# port 0 with 1, as aiqosd does. --stats-period keeps it running without a terminal.
tb_start_testpmd() {
	local bin=${1:-dpdk-testpmd}
	ip netns exec "$TB_NS_DUT" "$bin" -l "$TB_EAL_LCORES" --no-huge -m "$TB_EAL_MEM_MB" --no-pci \
		--file-prefix "$TB_PREFIX" \
		--vdev "net_af_packet0,iface=aq-cli,qpairs=1" --vdev "net_af_packet1,iface=aq-srv,qpairs=1" \
		-- --forward-mode=io --auto-start --stats-period 10 --total-num-mbufs=8192 \
		>"$TB_DIR/testpmd.log" 2>&1 </dev/null &
	TB_AIQOSD_PID=$!
	tb_wait_forwarding "$TB_WAIT_S" || return 1
	tb_log "testpmd stand-in forwarding (pid $TB_AIQOSD_PID)"
}

# Deterministic download content; the server generates the same bytes for /download/<N>.
tb_gen_bytes() { node "$TB_REPO_DIR/scripts/testbed/h2c_server.js" --gen "$1"; }

# tb_start_h2c_server [node|nghttpd]
#   node    (default) scripts/testbed/h2c_server.js: echoes "model", SSE streaming, /download/<N>
#   nghttpd static htdocs: POST is answered but its body ignored (fixed chat.completion JSON);
#           /download/5242880 is a file of the same deterministic bytes
tb_start_h2c_server() {
	local kind=${1:-node} i
	case $kind in
	node)
		tb_srv node "$TB_REPO_DIR/scripts/testbed/h2c_server.js" --host "$TB_SRV_IP" --port "$TB_PORT" \
			>"$TB_DIR/server.log" 2>&1 </dev/null &
		;;
	nghttpd)
		local d="$TB_DIR/htdocs"
		mkdir -p "$d/v1/chat" "$d/download"
		printf '%s\n' '{"id":"chatcmpl-aiqos-static","object":"chat.completion","created":1700000000,"model":"static","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":4,"total_tokens":5}}' \
			>"$d/v1/chat/completions"
		tb_gen_bytes 5242880 >"$d/download/5242880"
		tb_srv nghttpd --no-tls -a "$TB_SRV_IP" -d "$d" "$TB_PORT" >"$TB_DIR/server.log" 2>&1 </dev/null &
		;;
	*) tb_die "unknown server kind: $kind" || return 1 ;;
	esac
	TB_SERVER_PID=$!
	for ((i = 0; i < 50; i++)); do
		# Asked from inside the server namespace, so this does not cross the dut.
		if tb_srv curl -s -o /dev/null --max-time 1 --http2-prior-knowledge \
			"http://$TB_SRV_IP:$TB_PORT/healthz" 2>/dev/null; then
			tb_log "h2c server ($kind) on $TB_SRV_IP:$TB_PORT (pid $TB_SERVER_PID)"
			return 0
		fi
		tb_pid_alive "$TB_SERVER_PID" || break
		sleep 0.1
	done
	tb_die "h2c server ($kind) did not come up; log: $TB_DIR/server.log"
}

# shellcheck disable=SC2034 # the H2_* results are for the caller
# Parse h2load's summary. Sets H2_TOTAL H2_STARTED H2_DONE H2_SUCCEEDED H2_FAILED H2_ERRORED
# H2_TIMEOUT H2_REQPS H2_FINISHED_S H2_2XX from the log file $1.
tb_parse_h2load() {
	local f=$1 line
	line=$(grep -E '^requests: [0-9]+ total' "$f" | tail -n1)
	[[ -n $line ]] || return 1
	read -r H2_TOTAL H2_STARTED H2_DONE H2_SUCCEEDED H2_FAILED H2_ERRORED H2_TIMEOUT < <(
		sed -E 's/^requests: ([0-9]+) total, ([0-9]+) started, ([0-9]+) done, ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored, ([0-9]+) timeout.*/\1 \2 \3 \4 \5 \6 \7/' <<<"$line")
	[[ $H2_TIMEOUT =~ ^[0-9]+$ ]] || return 1
	H2_FINISHED_S=$(sed -nE 's/^finished in ([0-9.]+)(m?s),.*/\1 \2/p' "$f" | tail -n1 |
		awk '{ print ($2 == "ms") ? $1 / 1000 : $1 }')
	H2_REQPS=$(sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$f" | tail -n1)
	H2_2XX=$(sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p' "$f" | tail -n1)
}
