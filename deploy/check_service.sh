#!/usr/bin/env bash
# The installed service run as systemd would run it (systemd itself cannot run in CI), from a real
# `meson install --destdir`: the installed unit's ExecStart line with the installed environment
# file's variables, only the EAL ports replaced by test vdevs (net_null) and the installed paths
# moved under the staging directory (the policy, /run/aiqos). notify_stub.py stands in for
# systemd's notification socket, WATCHDOG_USEC for the unit's WatchdogSec (shortened to 1 s).
#   - READY=1 with a STATUS= line once ports and workers are up; `aiqosctl policy show` shows the
#     installed policy (file and classes of config/aiqos.yaml); the version of --version in
#     aiqosctl status and DPDK telemetry
#   - a reload by aiqosctl, then ExecReload (SIGHUP): RELOADING=1 then READY=1, generation +1
#   - a policy with other limits (SIGHUP): in force, STATUS and aiqosctl status name the limits
#     that wait for a restart
#   - a broken policy over the installed file: `aiqosctl policy reload` refused with
#     file:line:column, SIGHUP too (STATUS says so), generation and classes as before
#   - WATCHDOG=1 pings while the workers run; none once worker 0 is stalled (--test-stall-signal)
#   - SIGTERM (KillSignal): STOPPING=1, exit 0, --stats-json written to the runtime directory
# Registered as meson test 'install-service' (suite install). Exit 0 pass, 1 fail, 77 skip (not root).
# usage: check_service.sh BUILDDIR PREFIX BINDIR SYSCONFDIR LIBDIR DATADIR MANDIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (DPDK EAL)"; exit 77; }
# shellcheck source=deploy/stage.sh
source "$HERE/stage.sh"
stage_install "$@"

RUN=$STAGE/run/aiqos # what RuntimeDirectory=aiqos makes: /run/aiqos
mkdir -p "$RUN"
NLOG=$RUN/notify.log
PID= STUB=
stage_cleanup() {
	[[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null
	[[ -n $STUB ]] && kill "$STUB" 2>/dev/null
	if ((FAILS > 0)); then
		echo "---- notifications ----"
		cat "$NLOG"
		echo "---- aiqosd ----"
		tail -n 40 "$RUN/aiqosd.log"
	fi
}
ctl() { "$STAGE$BIN/aiqosctl" --socket "$RUN/aiqosd.sock" --timeout 5 "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[int(k)] if isinstance(d, list) else d[k]
print(d if not isinstance(d, (list, dict)) else json.dumps(d))' "$1"; }
# wait_note PATTERN [SECONDS] [AFTER_LINE]: a notification matching PATTERN after line AFTER_LINE.
wait_note() {
	local end=$((SECONDS + ${2:-15})) from=${3:-0}
	while ((SECONDS < end)); do
		tail -n +"$((from + 1))" "$NLOG" | grep -E -- "$1" && return 0
		kill -0 "$PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
notes() { wc -l <"$NLOG"; }

[[ $(unit_value Type) == notify ]] && pass "unit Type=notify" || fail "unit Type is $(unit_value Type)"
wd_sec=$(unit_value WatchdogSec)
[[ -n $wd_sec ]] && pass "unit WatchdogSec=$wd_sec" || fail "unit has no WatchdogSec"
WD_USEC=1000000

python3 "$HERE/notify_stub.py" "$RUN/notify" "$NLOG" &
STUB=$!
for _ in $(seq 50); do [[ -S $RUN/notify ]] && break; sleep 0.1; done

# systemd's command-line rules (systemd.service(5)): $VAR is split at spaces into words, ${VAR} is
# one word. In bash the latter needs quotes; globbing is off like in systemd.
exec_start=$(unit_value ExecStart)
cmd=$(sed -E 's/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/"${\1}"/g' <<<"$exec_start")
cmd=$STAGE$cmd
info "ExecStart=$exec_start"
(
	set -a
	# shellcheck source=/dev/null
	. "$STAGE$ENVFILE"
	set +a
	[[ -n ${AIQOSD_POLICY:-} ]] || { echo "AIQOSD_POLICY is empty in $ENVFILE"; exit 2; }
	AIQOSD_POLICY=$STAGE$AIQOSD_POLICY
	AIQOSD_EAL_ARGS="-l 0,1 --no-huge -m 256 --no-pci --file-prefix aqsvc$$ --log-level=lib.eal:notice
		--vdev net_null0,no-rx=1 --vdev net_null1,no-rx=1"
	AIQOSD_ARGS="${AIQOSD_ARGS//\/run\/aiqos/$RUN} --ctl-socket $RUN/aiqosd.sock --prometheus 127.0.0.1:0
		--test-stall-signal"
	export NOTIFY_SOCKET=$RUN/notify WATCHDOG_USEC=$WD_USEC
	set -f
	echo "+ $cmd"
	eval "exec $cmd"
) </dev/null >"$RUN/aiqosd.log" 2>&1 &
PID=$!

if line=$(wait_note '^[0-9.]+ READY=1' 60); then
	pass "READY=1: $line"
else
	fail "no READY=1 within 60 s"
	exit 1
fi
[[ $line == *'STATUS=policy generation 1 from '"$STAGE$ETC/aiqos/aiqos.yaml"* ]] &&
	pass "STATUS names the installed policy" || fail "STATUS does not name the installed policy: $line"
grep -q 'worker(s) forwarding' "$RUN/aiqosd.log" && pass "ports and workers were up before READY" ||
	fail "no 'worker(s) forwarding' in the log"

show=$(ctl --json policy show)
[[ $(jget file <<<"$show") == "$STAGE$ETC/aiqos/aiqos.yaml" ]] && pass "policy show: the installed policy is in force" ||
	fail "policy show: file is $(jget file <<<"$show")"
# The classes of config/aiqos.yaml: the "  - name:" entries between "classes:" and "rules:".
want_classes=$(sed -n '/^classes:/,/^rules:/s/^  - name: *\([^ ]*\).*/\1/p' "$REPO/config/aiqos.yaml" | xargs)
got_classes=$(jget classes <<<"$show" | python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin)))')
[[ $got_classes == "$want_classes" ]] && pass "classes in force: $got_classes" ||
	fail "classes in force '$got_classes', config/aiqos.yaml has '$want_classes'"
version=$("$STAGE$BIN/aiqosd" --version)
[[ $(ctl --json status | jget version) == "${version#aiqosd }" ]] && pass "aiqosctl status: version ${version#aiqosd }" ||
	fail "status version differs from '$version'"

# DPDK telemetry's /aiqos/status carries the same version.
if command -v dpdk-telemetry.py >/dev/null; then
	tel=$(echo /aiqos/status | dpdk-telemetry.py -f "aqsvc$$" 2>/dev/null | tr -d '\n' || true)
	v=${version#aiqosd }
	[[ $tel == *"\"version\": \"$v\""* ]] && pass "telemetry /aiqos/status: version $v" ||
		fail "telemetry /aiqos/status has no version '$v': ${tel:0:200}"
fi

# Reloads: aiqosctl, then what ExecReload does (SIGHUP).
ctl policy reload >/dev/null && pass "aiqosctl policy reload" || fail "aiqosctl policy reload failed"
n=$(notes)
kill -HUP "$PID"
if wait_note '^[0-9.]+ RELOADING=1' 10 "$n" >/dev/null && r=$(wait_note '^[0-9.]+ READY=1' 10 "$n"); then
	pass "SIGHUP: RELOADING=1 then $r"
else
	fail "SIGHUP: no RELOADING=1 then READY=1"
fi
gen=$(ctl --json status | jget policy.generation)
[[ $gen == 3 ]] && pass "generation 3 after two reloads" || fail "generation $gen after two reloads, want 3"
[[ $(ctl --json status | jget policy.restart_needed) == "[]" ]] && pass "status: no restart needed" ||
	fail "status: restart_needed is $(ctl --json status | jget policy.restart_needed) with the limits it started with"

# A policy whose limits differ from those aiqosd started with: in force but for the limits,
# which size tables at start; STATUS and aiqosctl status say a restart is needed.
sed 's/^  flows: 262144/  flows: 131072/' "$REPO/config/aiqos.yaml" >"$STAGE$ETC/aiqos/aiqos.yaml"
grep -q '^  flows: 131072' "$STAGE$ETC/aiqos/aiqos.yaml" || fail "config/aiqos.yaml has no 'flows: 262144' to change"
n=$(notes)
kill -HUP "$PID"
if r=$(wait_note '^[0-9.]+ READY=1.*STATUS=policy generation 4 .*; restart needed for limits\.flows' 10 "$n"); then
	pass "SIGHUP with other limits: $r"
else
	fail "SIGHUP with other limits: no READY=1 whose STATUS says a restart is needed"
fi
[[ $(ctl --json status | jget policy.restart_needed) == '["limits.flows"]' ]] && pass "status: restart needed for limits.flows" ||
	fail "status: restart_needed is $(ctl --json status | jget policy.restart_needed)"

# A broken policy over the installed file: refused with file:line:column, the old one stays.
cp "$REPO/tests/unit/control/data/ten_errors.yaml" "$STAGE$ETC/aiqos/aiqos.yaml"
if out=$(ctl policy reload 2>&1); then
	fail "a broken policy was accepted"
else
	grep -qE "aiqos\.yaml:[0-9]+:[0-9]+" <<<"$out" && pass "broken policy refused: $(head -n 1 <<<"$out")" ||
		fail "refusal without file:line:column: $out"
fi
n=$(notes)
kill -HUP "$PID"
if r=$(wait_note '^[0-9.]+ READY=1.*STATUS=policy reload failed' 10 "$n"); then pass "SIGHUP with a broken policy: $r"; else
	fail "SIGHUP with a broken policy: no READY=1 saying the reload failed"; fi
show2=$(ctl --json policy show)
[[ $(jget generation <<<"$show2") == 4 && $(jget classes <<<"$show2") == "$(jget classes <<<"$show")" ]] &&
	pass "the running policy stays (generation 4, same classes)" || fail "the policy changed after a refused reload"

# Watchdog: pings while every worker turns its loop; none once worker 0 is stuck.
n=$(notes)
sleep 2.2
pings=$(tail -n +"$((n + 1))" "$NLOG" | grep -c 'WATCHDOG=1' || true)
((pings >= 3)) && pass "$pings WATCHDOG=1 pings in 2.2 s (WATCHDOG_USEC=$WD_USEC)" || fail "$pings watchdog pings in 2.2 s"
kill -USR2 "$PID"
sleep 1.2 # the last ping of a healthy period may still come
n=$(notes)
sleep 2.5
pings=$(tail -n +"$((n + 1))" "$NLOG" | grep -c 'WATCHDOG=1' || true)
((pings == 0)) && pass "worker 0 stalled: no ping in 2.5 s" || fail "worker 0 stalled, still $pings pings"
grep -q "watchdog: worker(s) 0 made no poll loop" "$RUN/aiqosd.log" && pass "the stall is logged" ||
	fail "no stall message in the log"

# Stop: KillSignal=SIGTERM.
n=$(notes)
kill -TERM "$PID"
rc=0
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
wait "$PID" || rc=$?
PID=
[[ $rc == 0 ]] && pass "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
tail -n +"$((n + 1))" "$NLOG" | grep -q 'STOPPING=1' && pass "STOPPING=1" || fail "no STOPPING=1"
[[ -s $RUN/final.json ]] && pass "--stats-json from AIQOSD_ARGS written to the runtime directory" ||
	fail "no $RUN/final.json"
stage_result
