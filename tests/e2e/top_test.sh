#!/usr/bin/env bash
# `aiqosctl top` in a terminal, as an operator sees it: aiqosd bridges the testbed with the example
# policy (config/aiqos.yaml) while curl keeps sending chat requests for two models; aiqosctl top
# runs in a detached tmux pane (send-keys, capture-pane). Within 2 refreshes the pane shows every
# class of the policy and both models with a request rate; `q` quits it and the terminal is left
# in its normal mode. Root only (SKIP otherwise); needs tmux, curl, nodejs.
# usage: top_test.sh AIQOSD AIQOSCTL
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 2 2 "$@"
AIQOSD=$(realpath "$1")
AIQOSCTL=$(realpath "$2")
e2e_need tmux curl node
e2e_testbed top aqtop
TMUX_SOCK=aiqos-top-$$
e2e_before_exit() { tmux -L "$TMUX_SOCK" kill-server 2>/dev/null || true; }

POLICY=$REPO/config/aiqos.yaml
SOCK=$TB_DIR/ctl.sock
tb_up
tb_start_aiqosd "$AIQOSD" --policy "$POLICY" --ctl-socket "$SOCK" --prometheus none
tb_start_h2c_server node

# Traffic for the whole test: gpt-4o (class interactive) and llama-3.1-8b-instruct (standard).
load() {
	while :; do
		for m in gpt-4o llama-3.1-8b-instruct; do
			tb_cli curl -s --max-time 5 --http2-prior-knowledge -o /dev/null \
				-H 'content-type: application/json' -d "{\"model\":\"$m\",\"messages\":[]}" \
				"http://$TB_SRV_IP:$TB_PORT/v1/chat/completions" || true
		done
		sleep 0.1
	done
}
load &
BG_PIDS+=($!)
sleep 1

tmux -L "$TMUX_SOCK" new-session -d -s top -x 132 -y 40 \
	"$AIQOSCTL --socket $SOCK top --interval 1; echo top-exit-\$? >$TB_DIR/top.rc; sleep 30"
# The first screen comes at once (rates "-"), the second a second later. Within 2 refreshes (and
# 0.6 s for the requests of one refresh), the pane must show the interactive class's bit rate.
t0=$(date +%s.%N)
for _ in $(seq 13); do
	sleep 0.2
	tmux -L "$TMUX_SOCK" capture-pane -p -t top >"$TB_DIR/pane.txt"
	awk '$1 == "interactive" && $3 != "-" && $3 + 0 > 0 { ok = 1 } END { exit !ok }' "$TB_DIR/pane.txt" && break
done
info "pane after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s:"
cat "$TB_DIR/pane.txt"
want_classes=$(sed -n '/^classes:/,/^rules:/s/^  - name: *\([^ ]*\).*/\1/p' "$POLICY")
for c in $want_classes; do
	grep -qE "^$c +[0-9.kMG-]+ " "$TB_DIR/pane.txt" && pass "top shows class $c" || fail "top does not show class $c"
done
for m in gpt-4o llama-3.1-8b-instruct; do
	# MODEL REQUESTS BIT/S REQ/S: a request rate above zero for a model under load.
	if awk -v m="$m" '$1 == m && $4 + 0 > 0 { ok = 1 } END { exit !ok }' "$TB_DIR/pane.txt"; then
		pass "top shows model $m with a request rate"
	else
		fail "top shows no request rate for model $m"
	fi
done
awk '$1 == "interactive" && $3 != "-" && $3 + 0 > 0 { ok = 1 } END { exit !ok }' "$TB_DIR/pane.txt" &&
	pass "class interactive has a bit rate (second refresh)" || fail "no bit rate for class interactive"

tmux -L "$TMUX_SOCK" send-keys -t top q
for _ in $(seq 30); do [[ -s $TB_DIR/top.rc ]] && break; sleep 0.1; done
[[ $(cat "$TB_DIR/top.rc" 2>/dev/null) == top-exit-0 ]] && pass "q quits top (exit 0)" ||
	fail "top did not quit on q: $(cat "$TB_DIR/top.rc" 2>/dev/null)"
stop_bg
tmux -L "$TMUX_SOCK" kill-server 2>/dev/null || true
