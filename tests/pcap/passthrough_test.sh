#!/usr/bin/env bash
# Pcap regression: a mix of L2/L3 shapes (gen_l2_mix.py) replayed through aiqosd must come out
# of the paired port unchanged: same count, same order, same bytes. Timestamps are ignored.
#
# usage: passthrough_test.sh AIQOSD_BIN
#
# Cases:
#   vdev-0to1   net_pcap vdevs, frames in on port 0      -> out of port 1, nothing out of port 0
#   vdev-1to0   the same with the ports swapped
#   bulk-0to1   the mix 200 times (4000 frames, many bursts): no loss, no reordering
#   offline     aiqosd --pcap-in/--pcap-out (its offline mode), if the binary has it
# Exit 0 pass, 1 fail, 77 skip (python3 with scapy missing). AIQOS_KEEP_LOGS=1 keeps the work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AIQOSD=${1:?usage: passthrough_test.sh AIQOSD_BIN}
AIQOSD=$(realpath "$AIQOSD")
[[ -x $AIQOSD ]] || { echo "FAIL: not executable: $AIQOSD"; exit 1; }

# scapy may live only in the system interpreter (python3-scapy) while PATH has another python3.
PY=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import scapy' 2>/dev/null; then
		PY=$p
		break
	fi
done
[[ -n $PY ]] || { echo "SKIP: no python3 with scapy (apt-get install python3-scapy)"; exit 77; }

WORK=$(mktemp -d /tmp/aiqos-pcap.XXXXXX)
FILE_PREFIX="aqpcap$$"
FAILS=0
finish() {
	local rc=$?
	trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
	trap - EXIT
	rm -rf "/var/run/dpdk/$FILE_PREFIX" 2>/dev/null || true
	if ((FAILS > 0)) || [[ $rc != 0 ]]; then
		echo "logs: $WORK"
		echo "RESULT: FAIL ($FAILS failed cases, exit $rc)"
		exit 1
	fi
	if [[ ${AIQOS_KEEP_LOGS:-0} == 1 ]]; then echo "logs: $WORK"; else rm -rf "$WORK"; fi
	echo "RESULT: PASS"
	exit 0
}
trap finish EXIT
trap 'echo interrupted; exit 130' INT TERM

"$PY" "$HERE/gen_l2_mix.py" "$WORK/in.pcap" --list >"$WORK/names.txt"
# A pcap with a header and no frames: the rx side of the port that receives nothing.
"$PY" -c 'import struct,sys; open(sys.argv[1],"wb").write(struct.pack("<IHHiIII",0xA1B2C3D4,2,4,0,0,65535,1))' \
	"$WORK/empty.pcap"
echo "INFO: $(wc -l <"$WORK/names.txt") frames in $WORK/in.pcap"

# shellcheck disable=SC2054 # "0,1" is one lcore list
EAL=(-l 0,1 --no-huge -m 256 --no-pci --file-prefix "$FILE_PREFIX" --log-level=lib.eal:notice)

# run_aiqosd NAME ARGS...: bounded run, exit status and duration checked.
run_aiqosd() {
	local name=$1 rc=0 t0 ms
	shift
	t0=$(date +%s%N)
	timeout -k 5 60 "$AIQOSD" "$@" >"$WORK/$name.log" 2>&1 </dev/null || rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	if [[ $rc != 0 ]]; then
		echo "FAIL: $name: aiqosd exit $rc after ${ms} ms (124: did not exit by itself); log $WORK/$name.log"
		tail -n 15 "$WORK/$name.log" | sed 's/^/    /'
		return 1
	fi
	echo "INFO: $name: aiqosd exited 0 after ${ms} ms"
}

# expect_frames NAME EXPECTED ACTUAL [NAMES_FILE]
expect_frames() {
	local name=$1 names=${4:-$WORK/names.txt}
	if "$PY" "$HERE/compare_pcaps.py" "$2" "$3" --names "$names" >"$WORK/${name%% *}.cmp" 2>&1; then
		echo "PASS: $name: $(tail -n1 "$WORK/${name%% *}.cmp" | sed 's/^PASS: //')"
	else
		echo "FAIL: $name:"
		head -n 20 "$WORK/${name%% *}.cmp" | sed 's/^/    /'
		FAILS=$((FAILS + 1))
	fi
}

# vdev_case NAME INPUT_PCAP NAMES_FILE RX_OF_PORT0 RX_OF_PORT1 PORT_THAT_MUST_EMIT
vdev_case() {
	local name=$1 input=$2 names=$3 in0=$4 in1=$5 out_port=$6 quiet_port=$((1 - $6))
	rm -f "$WORK/$name".out*.pcap
	if ! run_aiqosd "$name" "${EAL[@]}" \
		--vdev "net_pcap0,rx_pcap=$in0,tx_pcap=$WORK/$name.out0.pcap" \
		--vdev "net_pcap1,rx_pcap=$in1,tx_pcap=$WORK/$name.out1.pcap" \
		-- --idle-exit 1 --stats-json "$WORK/$name.stats.json"; then
		FAILS=$((FAILS + 1))
		return 0
	fi
	expect_frames "$name port $out_port" "$input" "$WORK/$name.out$out_port.pcap" "$names"
	expect_frames "$name-silent port $quiet_port (must stay silent)" "$WORK/empty.pcap" "$WORK/$name.out$quiet_port.pcap"
	if [[ -f $WORK/$name.stats.json ]]; then
		"$PY" - "$WORK/$name.stats.json" "$(wc -l <"$names")" "$out_port" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
st = json.load(open(sys.argv[1]))
n, out = int(sys.argv[2]), int(sys.argv[3])
p = {x["port"]: x for x in st["ports"]}
rx, tx = p[1 - out]["rx_packets"], p[out]["tx_packets"]
leak = st.get("mbufs_in_use_at_exit")
ok = rx == n and tx == n and leak == 0
print(f"{'PASS' if ok else 'FAIL'}: counters: port {1 - out} rx {rx}, port {out} tx {tx} (want {n}); "
      f"mbufs_in_use_at_exit {leak}")
sys.exit(0 if ok else 1)
PY
	else
		echo "FAIL: $name: no stats JSON written"
		FAILS=$((FAILS + 1))
	fi
}

vdev_case vdev-0to1 "$WORK/in.pcap" "$WORK/names.txt" "$WORK/in.pcap" "$WORK/empty.pcap" 1
vdev_case vdev-1to0 "$WORK/in.pcap" "$WORK/names.txt" "$WORK/empty.pcap" "$WORK/in.pcap" 0
"$PY" "$HERE/gen_l2_mix.py" "$WORK/bulk.pcap" --list --repeat 200 >"$WORK/bulk.names.txt"
vdev_case bulk-0to1 "$WORK/bulk.pcap" "$WORK/bulk.names.txt" "$WORK/bulk.pcap" "$WORK/empty.pcap" 1

if "$AIQOSD" -- --help 2>/dev/null | grep -q -- '--pcap-in'; then
	if run_aiqosd offline --pcap-in "$WORK/in.pcap" --pcap-out "$WORK/offline.out.pcap"; then
		expect_frames offline "$WORK/in.pcap" "$WORK/offline.out.pcap"
	else
		FAILS=$((FAILS + 1))
	fi
else
	echo "INFO: offline: aiqosd has no --pcap-in; case skipped"
fi
