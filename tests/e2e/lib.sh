# shellcheck shell=bash
# Shared harness of the end-to-end tests: check reporting, background jobs, and the exit trap
# that tears the testbed down, prints aiqosd's last lines on failure and keeps or removes
# $TB_DIR (AIQOS_KEEP_LOGS=1 keeps it). Source after scripts/lib/testbed.sh; a test may define
# e2e_before_exit (e.g. to remove a file) which runs on success before the logs are removed.
FAILS=0
BG_PIDS=()
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
info() { echo "INFO: $*"; }

# Background jobs this script started (curl, tcpdump, h2load) are ended by their own PID.
stop_bg() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	BG_PIDS=()
}

e2e_finish() {
	local rc=$?
	trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
	trap - EXIT
	stop_bg
	tb_down
	if ((FAILS > 0)) || [[ $rc != 0 ]]; then
		if [[ -f $TB_DIR/aiqosd.log ]]; then
			echo "---- last lines of aiqosd.log ----"
			tail -n 30 "$TB_DIR/aiqosd.log"
		fi
		echo "logs: $TB_DIR"
		echo "RESULT: FAIL ($FAILS failed checks, exit $rc)"
		exit 1
	fi
	if declare -F e2e_before_exit >/dev/null; then e2e_before_exit; fi
	if [[ ${AIQOS_KEEP_LOGS:-0} != 1 ]]; then
		rm -rf "$TB_DIR"
	else
		echo "logs: $TB_DIR"
	fi
	echo "RESULT: PASS"
	exit 0
}
trap e2e_finish EXIT
trap 'echo "interrupted"; exit 130' INT TERM
