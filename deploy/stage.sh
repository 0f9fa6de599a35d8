# shellcheck shell=bash
# Shared by the install tests (check_install.sh, check_service.sh): a real `meson install
# --destdir` into a temporary directory, the installed paths, and the check reporting.
# Source it, then call stage_install BUILDDIR PREFIX BINDIR SYSCONFDIR LIBDIR DATADIR MANDIR; it sets
#   STAGE (the DESTDIR, removed at exit), BIN ETC LIB DATA MAN (installed directories, without
#   STAGE), UNIT (the installed unit's path) and ENVFILE (the installed /etc/default/aiqosd).
FAILS=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
info() { echo "INFO: $*"; }

# The verdict and exit status of a test: exit 0 pass, 1 fail.
stage_result() {
	if ((FAILS > 0)); then
		echo "RESULT: FAIL ($FAILS)"
		exit 1
	fi
	echo "RESULT: PASS"
	exit 0
}

# At exit: the test's own clean-up (a function stage_cleanup, if it defines one), then the stage.
stage_exit() {
	if declare -F stage_cleanup >/dev/null; then stage_cleanup || true; fi
	rm -rf "$STAGE" "$STAGE.log"
}

stage_install() {
	local build=$1 prefix=$2 bindir=$3 sysconfdir=$4 libdir=$5 datadir=$6 mandir=$7
	# meson's rule: a relative directory option is under the prefix, an absolute one is itself.
	abs() { if [[ $1 == /* ]]; then echo "$1"; else echo "$prefix/$1"; fi; }
	BIN=$(abs "$bindir") ETC=$(abs "$sysconfdir") LIB=$(abs "$libdir") DATA=$(abs "$datadir")
	MAN=$(abs "$mandir")
	UNIT=$prefix/lib/systemd/system/aiqosd.service
	ENVFILE=$ETC/default/aiqosd
	STAGE=$(mktemp -d /tmp/aiqos-stage.XXXXXX)
	trap stage_exit EXIT
	if ! meson install -C "$build" --no-rebuild --destdir "$STAGE" >"$STAGE.log" 2>&1; then
		cat "$STAGE.log"
		echo "FAIL: meson install --destdir $STAGE"
		exit 1
	fi
	info "installed into $STAGE (prefix $prefix)"
}

# unit_value KEY: the value of KEY= in the installed unit (the last one, as systemd takes it).
unit_value() { sed -n "s/^$1=//p" "$STAGE$UNIT" | tail -n 1; }
