#!/usr/bin/env bash
# The install layout, the systemd unit, the man pages (man -l) and the bash completion, from a real
# `meson install --destdir` into a temporary directory. Registered as meson test 'install-layout' (suite install); exit 0 pass, 1 fail.
# usage: check_install.sh BUILDDIR PREFIX BINDIR SYSCONFDIR LIBDIR DATADIR MANDIR
set -euo pipefail
# shellcheck source=deploy/stage.sh
source "$(dirname "$0")/stage.sh"
stage_install "$@"
stage=$STAGE
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

want_file "$DATA/aiqos/grafana/aiqos-dashboard.json" "Grafana dashboard"
want_file "$DATA/aiqos/prometheus/aiqos-rules.yml" "Prometheus rules"

# Man pages: installed, and man renders each without an error from groff.
for page in man8/aiqosd.8 man8/aiqosctl.8 man5/aiqos.yaml.5; do
	want_file "$MAN/$page" "man page"
	[[ -f $stage$MAN/$page ]] || continue
	rendered=$(MANWIDTH=80 man -l "$stage$MAN/$page" 2>"$stage.man-err" | col -b)
	# Wide tables of docs/policy.md make troff and tbl say they cannot fit a line, a table or a
	# cell's text block in 80 columns or on one page: layout, not errors. Anything else fails.
	errors=$(grep -v -e 'warning.*cannot adjust line' -e "warning.*can't break line" \
		-e "warning: file '<standard input>', around line" -e 'table wider than line width' \
		-e 'table text block will not fit on one page' "$stage.man-err" || true)
	if [[ -n $errors ]]; then
		fail "man -l $page: $(head -n 3 <<<"$errors")"
	elif grep -q '^NAME' <<<"$rendered" && (($(wc -l <<<"$rendered") > 20)); then
		pass "man -l $page renders ($(wc -l <<<"$rendered") lines): $(sed -n '/^NAME/{n;p;q}' <<<"$rendered" | xargs)"
		[[ $page == */aiqosd.8 ]] && aiqosd_man=$rendered
	else
		fail "man -l $page: no NAME section or too short"
	fi
	rm -f "$stage.man-err"
done
grep -q -- '--log-level' <<<"${aiqosd_man-}" && grep -q -- '--policy' <<<"${aiqosd_man-}" &&
	pass "aiqosd(8) lists the options of aiqosd --help" || fail "aiqosd(8) lacks --policy or --log-level"
grep -q 'default_class' "$stage$MAN/man5/aiqos.yaml.5" && pass "aiqos.yaml(5) holds docs/policy.md" ||
	fail "aiqos.yaml(5) lacks docs/policy.md's default_class"

# bash completion: the installed file completes commands, subcommands and option values.
comp=$stage$DATA/bash-completion/completions/aiqosctl
want_file "${comp#"$stage"}" "bash completion"
complete_words() { # WORDS... (the last one is being completed): prints the completions
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _aiqosctl; echo "${COMPREPLY[*]}"' \
		_ "$comp" "$@" 2>&1
}
if [[ -f $comp ]]; then
	for c in "st|status stats" "policy |show reload" "stats --by m|model" "bypass o|on off" "top --i|--interval --iterations"; do
		IFS=' ' read -r -a words <<<"aiqosctl ${c%%|*}"
		[[ ${c%%|*} == *' ' ]] && words+=("")
		got=$(complete_words "${words[@]}")
		[[ $got == "${c#*|}" ]] && pass "completion of 'aiqosctl ${c%%|*}': $got" ||
			fail "completion of 'aiqosctl ${c%%|*}': '$got', want '${c#*|}'"
	done
fi

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
	exec_start=$(unit_value ExecStart)
	envfile=$(unit_value EnvironmentFile)
	envfile=${envfile#-}
	[[ ${exec_start%% *} == "$BIN/aiqosd" ]] && pass "ExecStart runs $BIN/aiqosd" ||
		fail "ExecStart '$exec_start' does not run $BIN/aiqosd"
	[[ $envfile == "$ETC/default/aiqosd" ]] && pass "EnvironmentFile=$envfile" ||
		fail "EnvironmentFile '$envfile' is not $ETC/default/aiqosd"
	for key in 'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'LimitMEMLOCK=infinity' \
		'Type=notify' 'NotifyAccess=main' 'WatchdogSec=10' \
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
	if (set -a && . "$stage$ENVFILE" && [[ -v AIQOSD_EAL_ARGS && -v AIQOSD_ARGS ]]); then
		pass "environment file defines AIQOSD_EAL_ARGS and AIQOSD_ARGS"
	else
		fail "environment file does not define AIQOSD_EAL_ARGS and AIQOSD_ARGS"
	fi
	# The service runs the installed policy: ExecStart passes --policy ${AIQOSD_POLICY}, and the
	# environment file names the policy meson installed.
	policy=$(set -a && . "$stage$ENVFILE" && echo "${AIQOSD_POLICY-}")
	[[ $policy == "$ETC/aiqos/aiqos.yaml" ]] && pass "AIQOSD_POLICY=$policy (installed)" ||
		fail "AIQOSD_POLICY='$policy' is not the installed $ETC/aiqos/aiqos.yaml"
	[[ $exec_start == *'--policy ${AIQOSD_POLICY}'* ]] && pass "ExecStart passes --policy \${AIQOSD_POLICY}" ||
		fail "ExecStart '$exec_start' does not pass --policy \${AIQOSD_POLICY}"
fi

stage_result
