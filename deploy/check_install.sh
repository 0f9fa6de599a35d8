#!/usr/bin/env bash
# The install layout and the systemd unit, from a real `meson install --destdir` into a temporary
# directory. Registered as meson test 'install-layout' (suite install); exit 0 pass, 1 fail.
# usage: check_install.sh BUILDDIR PREFIX BINDIR SYSCONFDIR LIBDIR DATADIR
set -euo pipefail
build=$1 prefix=$2 bindir=$3 sysconfdir=$4 libdir=$5 datadir=$6

stage=$(mktemp -d /tmp/aiqos-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# meson's rule: a relative directory option is under the prefix, an absolute one is itself.
abs() { if [[ $1 == /* ]]; then echo "$1"; else echo "$prefix/$1"; fi; }
BIN=$(abs "$bindir") ETC=$(abs "$sysconfdir") LIB=$(abs "$libdir") DATA=$(abs "$datadir")
UNIT=$prefix/lib/systemd/system/aiqosd.service

if ! meson install -C "$build" --no-rebuild --destdir "$stage" >"$stage.log" 2>&1; then
	cat "$stage.log"
	rm -f "$stage.log"
	echo "FAIL: meson install --destdir $stage"
	exit 1
fi
rm -f "$stage.log"
echo "INFO: installed into $stage (prefix $prefix):"
(cd "$stage" && find . -type f | sort | sed 's|^\.|  |')

want_file() { # path-under-stage description [test-flag]
	local p=$1 what=$2 flag=${3:--f}
	if test "$flag" "$stage$p"; then pass "$what: $p"; else fail "$what missing: $p"; fi
}
want_file "$BIN/aiqosd" "aiqosd" -x
if [[ -e $stage$BIN/aiqosctl ]]; then
	want_file "$BIN/aiqosctl" "aiqosctl" -x
else
	echo "INFO: no aiqosctl in this build (src/aiqosctl builds none yet)"
fi
want_file "$ETC/aiqos/aiqos.yaml" "policy"
want_file "$ETC/default/aiqosd" "environment file"
want_file "$UNIT" "systemd unit"
want_file "$LIB/aiqos/aiqos_steer.bpf.o" "XDP steering program"
for d in README.md deployment.md troubleshooting.md architecture.md; do
	want_file "$DATA/doc/aiqos/$d" "doc"
done

obj=$stage$LIB/aiqos/aiqos_steer.bpf.o
if [[ -f $obj ]]; then
	machine=$(LC_ALL=C readelf -h "$obj" 2>/dev/null | sed -n 's/^ *Machine: *//p')
	# The section table read whole first: `readelf | grep -q` under pipefail fails at random
	# when grep exits before readelf has written everything (SIGPIPE).
	sections=$(LC_ALL=C readelf -S "$obj" 2>/dev/null || true)
	if [[ $machine == *BPF* && $sections == *' .BTF '* ]]; then
		pass "aiqos_steer.bpf.o is a BPF ELF object with BTF ($machine)"
	else
		fail "aiqos_steer.bpf.o: machine '$machine' or no .BTF section"
	fi
fi

unit=$stage$UNIT
if [[ -f $unit ]]; then
	exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
	envfile=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")
	[[ ${exec_start%% *} == "$BIN/aiqosd" ]] && pass "ExecStart runs $BIN/aiqosd" ||
		fail "ExecStart '$exec_start' does not run $BIN/aiqosd"
	[[ $envfile == "$ETC/default/aiqosd" ]] && pass "EnvironmentFile=$envfile" ||
		fail "EnvironmentFile '$envfile' is not $ETC/default/aiqosd"
	for key in 'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'LimitMEMLOCK=infinity' \
		'CapabilityBoundingSet=CAP_IPC_LOCK CAP_SYS_ADMIN CAP_NET_ADMIN CAP_NET_RAW CAP_SETPCAP CAP_SETUID CAP_SETGID CAP_CHOWN'; do
		grep -qxF "$key" "$unit" && pass "unit has $key" || fail "unit lacks $key"
	done
	if grep -n '@[A-Z_]*@' "$unit" "$stage$ETC/default/aiqosd"; then
		fail "unsubstituted @VARIABLE@ left"
	fi
	# systemd-analyze verify checks the syntax, every directive, the dependencies and that the
	# commands exist. It runs on a copy whose installed paths point into the staging directory
	# (--root would also move /bin/sh and the system's targets there). Warnings fail too.
	if command -v systemd-analyze >/dev/null; then
		mkdir -p "$stage.verify"
		sed -e "s|$BIN/|$stage$BIN/|g" -e "s|$ETC/|$stage$ETC/|g" "$unit" >"$stage.verify/aiqosd.service"
		rc=0
		out=$(SYSTEMD_LOG_LEVEL=info systemd-analyze verify "$stage.verify/aiqosd.service" 2>&1) || rc=$?
		rm -rf "$stage.verify"
		if [[ $rc == 0 && -z $out ]]; then
			pass "systemd-analyze verify: no error or warning, ExecStart and ExecStartPre commands exist"
		else
			fail "systemd-analyze verify (exit $rc): $out"
		fi
	else
		echo "INFO: no systemd-analyze (apt-get install systemd); checking the unit's syntax by hand"
		bad=$(grep -vnE '^(#.*|\[(Unit|Service|Install)\]|[A-Za-z]+=.*|)$' "$unit" || true)
		[[ -z $bad ]] && pass "unit syntax (sections, key=value)" || fail "unit lines not key=value: $bad"
	fi
	# The environment file must parse as shell-style assignments (systemd's EnvironmentFile).
	if (set -a && . "$stage$ETC/default/aiqosd" && [[ -v AIQOSD_EAL_ARGS && -v AIQOSD_ARGS ]]); then
		pass "environment file defines AIQOSD_EAL_ARGS and AIQOSD_ARGS"
	else
		fail "environment file does not define AIQOSD_EAL_ARGS and AIQOSD_ARGS"
	fi
fi

if ((fails > 0)); then
	echo "RESULT: FAIL ($fails)"
	exit 1
fi
echo "RESULT: PASS"
