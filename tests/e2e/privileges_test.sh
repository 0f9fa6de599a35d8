#!/usr/bin/env bash
# End-to-end: privileges after start, and the operator bypass at run time. aiqosd bridges the
# testbed's namespaces on af_packet vdevs with the example policy, twice:
#   1. as root: once started, every thread of aiqosd (/proc/PID/task/*/status) has CapEff,
#      CapPrm and CapBnd 0 and NoNewPrivs 1; it still forwards (curl through it), logs requests,
#      `aiqosctl policy reload` still works; `aiqosctl bypass on` forwards requests without
#      logging them and counts bypassed frames, `bypass off` classifies again.
#   2. with --user nobody:nogroup: the same capabilities, Uid/Gid 65534 in every thread, the
#      control socket owned by nobody:nogroup mode 0660, forwarding and reload still work.
#   3. with --keep-caps net_admin: the main thread keeps exactly CAP_NET_ADMIN, no other thread
#      keeps anything.
# Exit 0 pass, 1 fail, 77 skip (not root).
# usage: privileges_test.sh AIQOSD AIQOSCTL
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 2 2 "$@"
AIQOSD=$(realpath "$1")
CTL=$(realpath "$2")
e2e_testbed privileges aq
chmod 755 "$TB_DIR"

POLICY=$TB_DIR/policy.yaml
cp "$REPO/config/aiqos.yaml" "$POLICY"
chmod 644 "$POLICY"

request() { # MODEL -> HTTP code
	tb_cli curl -s --max-time 10 --http2-prior-knowledge -o /dev/null -w '%{http_code}' \
		-H 'content-type: application/json' -d "{\"model\":\"$1\",\"messages\":[]}" \
		"http://$TB_SRV_IP:$TB_PORT/v1/chat/completions" || true
}
logged() { [[ -f $1 ]] && wc -l <"$1" || echo 0; }
wait_logged() { # FILE N: up to 5 s for N lines
	local i
	for i in $(seq 50); do (($(logged "$1") >= $2)) && return 0; sleep 0.1; done
	return 1
}
ctl() { "$CTL" --socket "$SOCK" "$@"; }
ctl_json() { "$CTL" --socket "$SOCK" --json "$@"; }

# Every thread: CapEff/CapPrm/CapBnd all zero, NoNewPrivs 1, and Uid/Gid WANT_ID.
check_threads() { # PID WANT_ID LABEL
	local pid=$1 want=$2 label=$3 t n=0 bad=0 f
	for t in /proc/"$pid"/task/*; do
		f=$t/status
		n=$((n + 1))
		local eff prm bnd nnp uid gid
		eff=$(awk '/^CapEff:/{print $2}' "$f")
		prm=$(awk '/^CapPrm:/{print $2}' "$f")
		bnd=$(awk '/^CapBnd:/{print $2}' "$f")
		nnp=$(awk '/^NoNewPrivs:/{print $2}' "$f")
		uid=$(awk '/^Uid:/{print $2" "$3" "$4" "$5}' "$f")
		gid=$(awk '/^Gid:/{print $2" "$3" "$4" "$5}' "$f")
		if [[ $eff != 0000000000000000 || $prm != 0000000000000000 || $bnd != 0000000000000000 || $nnp != 1 ||
			$uid != "$want $want $want $want" || $gid != "$want $want $want $want" ]]; then
			fail "$label: thread $(basename "$t") ($(cat "$t/comm")): CapEff $eff CapPrm $prm CapBnd $bnd NoNewPrivs $nnp Uid $uid Gid $gid"
			bad=$((bad + 1))
		fi
	done
	((bad == 0 && n >= 3)) && pass "$label: all $n threads have CapEff=CapPrm=CapBnd=0, NoNewPrivs=1, uid/gid $want"
	((n >= 3)) || fail "$label: only $n threads seen"
}

wait_dropped() {
	local i
	for i in $(seq 50); do grep -q 'privileges dropped' "$TB_DIR/aiqosd.log" && return 0; sleep 0.1; done
	return 1
}

tb_up || { fail "testbed set-up"; exit 1; }
tb_start_h2c_server node || { fail "h2c server start-up"; exit 1; }

# ---- 1. root without capabilities; bypass at run time ----
SOCK=$TB_DIR/run1/aiqosd.sock
LOG=$TB_DIR/requests1.jsonl
tb_start_aiqosd "$AIQOSD" --policy "$POLICY" --ctl-socket "$SOCK" --prometheus none --request-log "$LOG" ||
	{ fail "aiqosd did not start (root)"; exit 1; }
wait_dropped && pass "aiqosd: $(grep -o 'privileges dropped.*' "$TB_DIR/aiqosd.log")" || fail "no 'privileges dropped' line"
check_threads "$TB_AIQOSD_PID" 0 "root"
for m in gpt-4o llama-3.1-8b-instruct; do
	code=$(request "$m")
	[[ $code == 200 ]] && pass "root, no capabilities: request for $m forwarded (HTTP 200)" || fail "request for $m: HTTP $code"
done
wait_logged "$LOG" 2 && pass "2 requests logged" || fail "requests logged: $(logged "$LOG"), want 2"
out=$(ctl policy reload 2>&1) && gen=$(ctl_json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"]["generation"])') &&
	[[ $gen == 2 ]] && pass "aiqosctl policy reload without capabilities (generation $gen)" || fail "policy reload: $out (generation ${gen:-?})"

out=$(ctl bypass on 2>&1) && grep -q 'bypass: *yes' <<<"$out" && pass "aiqosctl bypass on" || fail "bypass on: $out"
before=$(logged "$LOG")
for m in gpt-4o gpt-4o-mini; do
	code=$(request "$m")
	[[ $code == 200 ]] && pass "bypass on: request for $m forwarded (HTTP 200)" || fail "bypass on: request for $m: HTTP $code"
done
sleep 1
(($(logged "$LOG") == before)) && pass "bypass on: nothing logged" || fail "bypass on: $(($(logged "$LOG") - before)) requests logged"
read -r on frames < <(ctl_json status | python3 -c 'import json,sys; b=json.load(sys.stdin)["bypass"]; print(b["on"], b["frames"])')
[[ $on == True ]] && ((frames >= 10)) && pass "status: bypass on, $frames frames bypassed" || fail "status bypass: on=$on frames=$frames"
out=$(ctl bypass off 2>&1) && grep -q 'bypass: *no' <<<"$out" && pass "aiqosctl bypass off" || fail "bypass off: $out"
code=$(request gpt-4o)
[[ $code == 200 ]] || fail "after bypass off: HTTP $code"
wait_logged "$LOG" $((before + 1)) && pass "bypass off: requests classified and logged again" || fail "bypass off: nothing logged"
tb_stop_aiqosd TERM 10 && pass "aiqosd (root, no capabilities) exit 0" || fail "aiqosd exit $?"

# ---- 2. --user nobody:nogroup ----
SOCK=$TB_DIR/run2/aiqosd.sock
LOG=$TB_DIR/requests2.jsonl
mkdir -p "$TB_DIR/run2"
chown nobody:nogroup "$TB_DIR/run2" # as systemd's RuntimeDirectory= would: the socket can be removed at exit
tb_start_aiqosd "$AIQOSD" --policy "$POLICY" --ctl-socket "$SOCK" --prometheus none --request-log "$LOG" \
	--user nobody:nogroup || { fail "aiqosd did not start (--user)"; exit 1; }
wait_dropped && pass "aiqosd: $(grep -o 'privileges dropped.*' "$TB_DIR/aiqosd.log")" || fail "no 'privileges dropped' line"
check_threads "$TB_AIQOSD_PID" 65534 "--user nobody:nogroup"
st=$(stat -c '%U:%G %a' "$SOCK" 2>&1)
[[ $st == "nobody:nogroup 660" ]] && pass "control socket nobody:nogroup 0660" || fail "control socket: $st"
code=$(request gpt-4o)
[[ $code == 200 ]] && pass "--user: request forwarded (HTTP 200)" || fail "--user: HTTP $code"
wait_logged "$LOG" 1 && pass "--user: request logged (log opened before the drop)" || fail "--user: nothing logged"
out=$(ctl policy reload 2>&1) && pass "--user: aiqosctl policy reload" || fail "--user: policy reload: $out"
tb_stop_aiqosd TERM 10 && pass "aiqosd (--user) exit 0" || fail "aiqosd (--user) exit $?"
[[ -e $SOCK ]] && fail "--user: control socket left behind" || pass "--user: control socket removed at exit"

# ---- 3. --keep-caps net_admin: the main thread only ----
SOCK=$TB_DIR/run3/aiqosd.sock
tb_start_aiqosd "$AIQOSD" --policy "$POLICY" --ctl-socket "$SOCK" --prometheus none --keep-caps net_admin ||
	{ fail "aiqosd did not start (--keep-caps)"; exit 1; }
wait_dropped || fail "no 'privileges dropped' line (--keep-caps)"
want=$(printf '%016x' $((1 << 12))) # CAP_NET_ADMIN
bad=0
for t in /proc/"$TB_AIQOSD_PID"/task/*; do
	eff=$(awk '/^CapEff:/{print $2}' "$t/status")
	prm=$(awk '/^CapPrm:/{print $2}' "$t/status")
	if [[ $(basename "$t") == "$TB_AIQOSD_PID" ]]; then
		[[ $eff == "$want" && $prm == "$want" ]] || { fail "--keep-caps: main thread CapEff $eff CapPrm $prm, want $want"; bad=1; }
	else
		[[ $eff == 0000000000000000 && $prm == 0000000000000000 ]] ||
			{ fail "--keep-caps: thread $(basename "$t") ($(cat "$t/comm")) CapEff $eff CapPrm $prm"; bad=1; }
	fi
done
((bad == 0)) && pass "--keep-caps net_admin: main thread CapEff=CapPrm=$want, every other thread 0"
code=$(request gpt-4o)
[[ $code == 200 ]] && pass "--keep-caps: request forwarded (HTTP 200)" || fail "--keep-caps: HTTP $code"
tb_stop_aiqosd TERM 10 && pass "aiqosd (--keep-caps) exit 0" || fail "aiqosd (--keep-caps) exit $?"
