#!/usr/bin/env bash
# aiqosctl against a real control socket served by metrics_fixture (the real CtlServer and
# protocol over a fake ControlApi): every command, its table and --json output, exit codes
# 0/1/2, and the errors an operator sees (daemon not running, permission denied, unknown class).
#
# usage: aiqosctl_test.sh METRICS_FIXTURE_BIN AIQOSCTL_BIN
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 2 2 "$@"
FIXTURE=$(realpath "$1")
CTL=$(realpath "$2")
e2e_dir aiqosctl /tmp # where user nobody may reach the socket
DIR=$E2E_DIR
chmod 755 "$DIR"
SOCK=$DIR/run/aiqosd.sock
e2e_cleanup() {
	stop_bg
	[[ -e $SOCK ]] && fail "socket left behind after the server stopped"
	return 0
}

e2e_start_fixture "$FIXTURE" --listen 127.0.0.1:0 --socket "$SOCK" || { fail "fixture did not start"; exit 1; }
sleep 0.5 # a few synthetic requests (25)

# expect RC PATTERN -- ARGS...: exit code RC and PATTERN (grep -E) in stdout+stderr.
expect() {
	local want=$1 pat=$2 out rc=0
	shift 3
	out=$("$CTL" --socket "$SOCK" "$@" 2>&1) || rc=$?
	if [[ $rc == "$want" ]] && grep -qE -- "$pat" <<<"$out"; then
		pass "aiqosctl $* -> $rc"
	else
		fail "aiqosctl $* -> $rc (want $want, /$pat/): $out"
	fi
}

expect 0 'version: +fixture' -- status
expect 0 '"version": "fixture"' -- --json status
expect 0 '^CLASS +PRIO +RATE +BURST' -- classes
expect 0 'interactive +0 +20 Mbit/s +64 KB +drop' -- classes
expect 0 'rate_bps: 30000000' -- class set interactive rate=30Mbit burst=128KB
expect 0 '"rate_bps": 30000000' -- classes --json
expect 1 "^aiqosctl: unknown class 'nope'" -- class set nope rate=1M
expect 2 "bad rate 'fast'" -- class set interactive rate=fast
expect 2 'give rate=RATE, burst=SIZE or both' -- class set interactive
expect 2 "expected rate=RATE or burst=SIZE, got 'ceil=1M'" -- class set interactive ceil=1M
expect 0 '^CLASS +CLIENT +SERVER +MODEL +BYTES' -- flows --top 2 --class batch
expect 0 '^batch +198.18.0.1:40001 +198.18.0.2:8080 +llama-3 +2000' -- flows --top 2 --class batch
expect 0 '^MODEL +REQUESTS .*TTFB_P50_MS' -- stats --by model
expect 0 '^llama-3-8b +[1-9]' -- stats --by model
expect 0 '^interactive +[1-9]' -- stats
expect 0 '^chat_completions' -- stats --by endpoint
expect 0 '^PORT +DROPS.NO_PEER +DROPS.TX_FULL +RX_PACKETS +TX_PACKETS' -- stats --by port
expect 0 '^1 +0 +1 +[1-9][0-9]* +[1-9]' -- stats --by port
expect 0 'CLASSIFIER.FLOWS_ACTIVE' -- stats --by worker
expect 2 "--by must be class, model" -- stats --by colour
expect 0 '^ok$' -- stats reset
# The fixture adds 5 requests every 100 ms: right after a reset there are few.
n=$("$CTL" --socket "$SOCK" --json stats --by model | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
((n <= 10)) && pass "stats reset zeroed the statistics ($n requests since)" || fail "stats reset: $n requests after"
expect 1 "^aiqosctl: $DIR/p.yaml:1:1:" -- policy reload "$DIR/p.yaml"
(cd "$DIR" && expect 1 "^aiqosctl: $DIR/rel.yaml:1:1:" -- policy reload rel.yaml) # resolved client-side
# A reload whose limits changed is published; the limits wait for a restart and aiqosctl says so.
expect 0 '^warning: limits.flows, limits.idle_timeout.tcp changed: limits apply at start; restart aiqosd' -- policy reload "$DIR/limits.yaml"
expect 0 '"restart_needed": \[' -- --json policy reload "$DIR/limits.yaml"
expect 0 '^interactive +[0-9]' -- policy show
expect 0 '^ +on: +no' -- status
expect 0 'bypass: +yes' -- bypass on
expect 0 '^ +on: +yes' -- status
expect 0 '"on": true' -- --json status
expect 0 'bypass: +no' -- bypass off
expect 2 "bypass: expected on or off, got 'maybe'" -- bypass maybe
expect 2 'bypass: expected on or off' -- bypass
expect 0 'Usage: aiqosctl bypass on\|off' -- bypass --help
expect 2 "unknown command 'reboot'" -- reboot
expect 2 'missing COMMAND' --
expect 2 "unknown option '--bogus'" -- --bogus status
expect 0 'Usage: aiqosctl flows' -- flows --help
expect 0 'Usage: aiqosctl \[--socket PATH\]' -- --help

out=$("$CTL" --socket "$DIR/none.sock" status 2>&1) && rc=0 || rc=$?
[[ $rc == 1 && $out == "aiqosctl: aiqosd is not running (no socket at $DIR/none.sock)" ]] &&
	pass "daemon not running -> 1" || fail "daemon not running: $rc $out"

if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null && getent passwd nobody >/dev/null; then
	chmod 755 "$DIR/run"
	out=$(setpriv --reuid nobody --regid nogroup --clear-groups "$CTL" --socket "$SOCK" status 2>&1) && rc=0 || rc=$?
	[[ $rc == 1 && $out == *"permission denied on $SOCK: run as root or as a member of group"* ]] &&
		pass "permission denied -> 1 ($out)" || fail "permission denied: $rc $out"
else
	echo "SKIP: permission check needs root and setpriv"
fi
