# shellcheck shell=bash
# Shared harness of the end-to-end tests: start-up checks, the test's log directory, the testbed,
# check reporting, background jobs, and the exit trap that tears it all down, prints aiqosd's last
# lines on failure and keeps or removes the log directory (AIQOS_KEEP_LOGS=1 keeps it).
#
# Source it first; it sets HERE (tests/e2e) and REPO (the checkout):
#   source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
#   e2e_usage MIN MAX "$@"   -h/--help or not MIN..MAX arguments: print the test's header comment
#                            (exit 0 for help, 2 otherwise)
#   e2e_need_root [WHY]      SKIP (exit 77) unless root
#   e2e_need CMD...          SKIP unless every CMD is installed
#   e2e_testbed NAME PREFIX  SKIP unless root; source scripts/lib/testbed.sh with the namespace prefix
#                            AIQOS_TB_PREFIX (default PREFIX<pid>), make TB_DIR (and E2E_DIR)
#                            $AIQOS_E2E_OUT/NAME.<prefix> afresh and arm the exit trap
#   e2e_dir NAME [ROOT]      the same without a testbed: E2E_DIR a fresh ROOT/NAME.XXXXXX (ROOT
#                            defaults to $AIQOS_E2E_OUT, else tests/e2e/out)
#   e2e_start_fixture BIN ARGS...  metrics_fixture in the background (log $E2E_DIR/fixture.log)
#                            until it says ready; sets FIX_PID and EXP_PORT (the port it bound)
# A test may define, for the exit trap:
#   e2e_cleanup      runs first, before background jobs end and the testbed goes down; may fail
#   e2e_on_fail      runs on failure, after aiqosd's last lines (more logs to show)
#   e2e_before_exit  runs on success before the logs are removed (e.g. to remove a large file)
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
FAILS=0
BG_PIDS=()
E2E_DIR=
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
info() { echo "INFO: $*"; }

e2e_usage() {
	local min=$1 max=$2
	shift 2
	if [[ ${1:-} != -h && ${1:-} != --help ]] && (($# >= min && $# <= max)); then return 0; fi
	# The header comment, from its second line to the first line that is not a comment.
	awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[-1]}"
	[[ ${1:-} == -h || ${1:-} == --help ]] && exit 0
	exit 2
}

e2e_skip() {
	echo "SKIP: $*"
	exit 77
}
# shellcheck disable=SC2120 # WHY is optional
e2e_need_root() { [[ $(id -u) == 0 ]] || e2e_skip "needs root (${1:-network namespaces})"; }
e2e_need() {
	local c
	for c; do command -v "$c" >/dev/null 2>&1 || e2e_skip "$c is not installed"; done
}

e2e_arm() {
	trap e2e_finish EXIT
	trap 'echo "interrupted"; exit 130' INT TERM
}

e2e_dir() {
	local root=${2:-${AIQOS_E2E_OUT:-$HERE/out}}
	mkdir -p "$root"
	E2E_DIR=$(mktemp -d "$root/$1.XXXXXX")
	e2e_arm
}

e2e_testbed() {
	e2e_need_root
	AIQOS_TB_PREFIX=${AIQOS_TB_PREFIX:-$2$$}
	# shellcheck source=scripts/lib/testbed.sh
	source "$REPO/scripts/lib/testbed.sh"
	local root=${AIQOS_E2E_OUT:-$HERE/out}
	TB_DIR=$root/$1.$TB_PREFIX
	E2E_DIR=$TB_DIR
	rm -rf "$TB_DIR"
	mkdir -p "$TB_DIR"
	e2e_arm
}

e2e_start_fixture() {
	"$@" >"$E2E_DIR/fixture.log" 2>&1 &
	FIX_PID=$!
	BG_PIDS+=("$FIX_PID")
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q '^ready' "$E2E_DIR/fixture.log" && break
		sleep 0.1
	done
	grep -q '^ready' "$E2E_DIR/fixture.log" || { cat "$E2E_DIR/fixture.log"; return 1; }
	# shellcheck disable=SC2034 # for the caller
	EXP_PORT=$(sed -n 's/^ready port=//p' "$E2E_DIR/fixture.log")
}

# Background jobs this script started (curl, tcpdump, h2load, servers) are ended by their own PID.
stop_bg() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	BG_PIDS=()
}

e2e_finish() {
	local rc=$? f
	trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
	trap - EXIT
	if declare -F e2e_cleanup >/dev/null; then e2e_cleanup; fi
	stop_bg
	if declare -F tb_down >/dev/null; then tb_down; fi
	if ((FAILS > 0)) || [[ $rc != 0 ]]; then
		while IFS= read -r f; do
			echo "---- last lines of ${f#"$E2E_DIR"/} ----"
			tail -n 30 "$f"
		done < <(find "$E2E_DIR" -name 'aiqosd*.log' 2>/dev/null | sort)
		if declare -F e2e_on_fail >/dev/null; then e2e_on_fail; fi
		echo "logs: $E2E_DIR"
		echo "RESULT: FAIL ($FAILS failed checks, exit $rc)"
		exit 1
	fi
	if declare -F e2e_before_exit >/dev/null; then e2e_before_exit; fi
	if [[ ${AIQOS_KEEP_LOGS:-0} != 1 ]]; then
		rm -rf "$E2E_DIR"
	else
		echo "logs: $E2E_DIR"
	fi
	echo "RESULT: PASS"
	exit 0
}
