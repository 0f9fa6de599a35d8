#!/usr/bin/env bash
# End-to-end: a fleet budget on Redis. Two testbeds, each with its own aiqosd, clients and h2c
# server (each aiqosd bridges half of one tenant's clients); one redis-server started here on a
# unix socket both dut namespaces reach (no TCP port). Policy: class tenant-a, 100 requests/s
# with scope: fleet, sync every 100 ms, expected_members 2, local_share 0.3; over budget,
# requests are demoted (so every request completes and the log says which were admitted).
# Each side is offered 100 requests/s (h2load, 4 clients x 25/s) for 12 s:
#   - with Redis up, the two boxes together admit 100/s +- 10% in every whole second
#     (one box alone with a local budget would admit 100, i.e. 200 together);
#   - Redis killed at ~4 s: local mode logged within 200 ms (one 100 ms interval + the 50 ms
#     timeout), then each box admits its local share, a 30/s bucket with a 30-request burst:
#     54/s .. 60/s + 60 together over the outage;
#   - Redis restarted at ~6.5 s: fleet mode logged within 200 ms (two intervals) of its first
#     PONG, and 100/s +- 10% again (seconds in which h2load, stalled by a loaded testbed, offered
#     under 150 are shown, not checked);
#   - every request of both h2loads succeeds: nothing lost or stalled by Redis going away.
# With MODE tokens (third argument) the budget is 30000 tokens/min with scope: fleet instead
# (each request's estimate 64 + body/4, the server's reported usage 8 + 64 = 72, corrected when
# the response ends); each side is offered 50 requests/s for 8 s inside one minute window, and
# the reported tokens of the requests the two boxes admitted in that window must be 30000 +- 10%
# (one box alone with a local budget would admit 30000, i.e. 60000 together).
# Exit 0 pass, 1 fail, 77 skip (not root).
# usage: fleet_test.sh AIQOSD [AIQOSCTL [requests|tokens]]
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
# shellcheck source=tests/e2e/redis_lib.sh
source "$HERE/redis_lib.sh"
e2e_usage 1 3 "$@"
AIQOSD=$(realpath "$1")
AIQOSCTL=${2:-$(dirname "$AIQOSD")/../aiqosctl/aiqosctl}
MODE=${3:-requests}
e2e_need_root
fleet_check_deps || exit 1
e2e_testbed fleet aqfa
WORK=$TB_DIR # a directory a testbed (A, B) and the shared files
declare -A BED_PID BED_SRV

# Two testbeds side by side; the testbed library works on whichever use_bed selected.
use_bed() {
	TB_PREFIX=aqf$1$$
	TB_NS_CLI="${TB_PREFIX}-cli"
	TB_NS_SRV="${TB_PREFIX}-srv"
	TB_NS_DUT="${TB_PREFIX}-dut"
	TB_DIR=$WORK/$1
	TB_AIQOSD_PID=${BED_PID[$1]:-}
	TB_SERVER_PID=${BED_SRV[$1]:-}
	mkdir -p "$TB_DIR"
}
save_bed() {
	BED_PID[$1]=$TB_AIQOSD_PID
	BED_SRV[$1]=$TB_SERVER_PID
}

e2e_cleanup() {
	local b
	stop_bg
	for b in A B; do
		use_bed "$b"
		tb_stop_aiqosd >/dev/null 2>&1
		tb_down
	done
	redis_kill
}

redis_up "$WORK" || { fail "redis-server did not start"; exit 1; }
cat >"$WORK/policy.yaml" <<EOF
version: 1
fleet:
  redis: {unix: $WORK/redis.sock}
  prefix: "e2e$$"
  sync_interval: 100ms
  timeout: 50ms
  expected_members: 2
  local_share: 0.3
classes:
  - name: default
  - name: tenant-a
    priority: 3
$(if [[ $MODE == tokens ]]; then
	echo "    token_budget: {tokens_per_minute: 30000, scope: fleet, action: demote}"
else
	printf '    requests_per_second: {rate: 100, scope: fleet}\n    exceed: demote\n'
fi)
    demote_to: default
rules:
  - match: {endpoint: chat_completions}
    class: tenant-a
EOF
printf '%s' '{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}' >"$WORK/body.json"

for b in A B; do
	use_bed "$b"
	tb_up || { fail "testbed $b"; exit 1; }
	tb_start_aiqosd "$AIQOSD" --policy "$WORK/policy.yaml" --ctl-socket "$WORK/$b.sock" \
		--prometheus 127.0.0.1:9470 --request-log "$TB_DIR/requests.jsonl" || { fail "aiqosd $b did not start"; exit 1; }
	tb_start_h2c_server node || { fail "server $b"; exit 1; }
	save_bed "$b"
done
# Both boxes in fleet mode before the load starts (at most 2 s).
for ((i = 0; i < 20; i++)); do
	n=0
	for b in A B; do
		"$AIQOSCTL" --socket "$WORK/$b.sock" --json stats --by tenant 2>/dev/null | grep -q '"mode": "fleet"' && n=$((n + 1))
	done
	((n == 2)) && break
	sleep 0.1
done
((n == 2)) && pass "both aiqosd in fleet mode" || fail "fleet mode on $n of 2 aiqosd"

# start_load CLIENTS SECONDS: h2load on both sides, each client 25 requests/s, in the background.
start_load() {
	local b
	for b in A B; do
		use_bed "$b"
		tb_cli h2load -c "$1" -m 1 --rps 25 -D "$2" -d "$WORK/body.json" -H 'content-type: application/json' \
			"http://$TB_SRV_IP:$TB_PORT/v1/chat/completions" >"$WORK/h2load.$b.log" 2>&1 &
		BG_PIDS+=($!)
	done
}

if [[ $MODE == tokens ]]; then
	# The 8 s of load must fall inside one minute window: start at most 45 s into a minute.
	while (($(date +%-S) > 45)); do sleep 0.5; done
	T0=$(date +%s.%N)
	start_load 2 8
	for p in "${BG_PIDS[@]}"; do wait "$p"; done
	BG_PIDS=()
	for b in A B; do
		"$AIQOSCTL" --socket "$WORK/$b.sock" stats --by tenant 2>&1 | sed -n '/^fleet budgets/,$p'
		use_bed "$b"
		tb_stop_aiqosd || fail "aiqosd $b exit status $?"
		save_bed "$b"
		tb_parse_h2load "$WORK/h2load.$b.log" || { fail "h2load $b summary"; continue; }
		if ((H2_SUCCEEDED == H2_TOTAL && H2_FAILED == 0 && H2_TOTAL > 300)); then
			pass "side $b: $H2_SUCCEEDED of $H2_TOTAL requests succeeded"
		else
			fail "side $b: total $H2_TOTAL succeeded $H2_SUCCEEDED failed $H2_FAILED errored $H2_ERRORED timeout $H2_TIMEOUT"
		fi
	done
	python3 - "$WORK" "$T0" <<'PY' || FAILS=$((FAILS + 1))
import datetime, json, sys
work, t0 = sys.argv[1], float(sys.argv[2])
window = int(t0) // 60
adm = est = n = demoted = 0
sources = set()
for b in "AB":
    for line in open(f"{work}/{b}/requests.jsonl"):
        r = json.loads(line)
        if r.get("endpoint") != "chat_completions":
            continue
        t = datetime.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp()
        if int(t) // 60 != window:
            continue
        if r.get("budget") is None and r.get("class") == "tenant-a":
            n += 1
            adm += r["input_tokens"] + r["output_tokens"]
            est += r["est_tokens"]
            sources.add(r["token_source"])
        else:
            demoted += 1
ok = 27000 <= adm <= 33000 and sources == {"usage"}
print(("PASS: " if ok else "FAIL: ") + f"tokens: the fleet admitted {n} requests, {adm} reported tokens "
      f"(estimates {est}, token sources {sorted(sources)}), {demoted} demoted; budget 30000 +- 10%")
sys.exit(0 if ok else 1)
PY
	exit 0
fi

T0=$(date +%s.%N)
start_load 4 12
sleep 4
KILL_T=$(date +%s.%N)
redis_kill
info "redis killed at +$(python3 -c "print(round($KILL_T-$T0,2))") s"
sleep 2.5
START_T=$(date +%s.%N)
redis_up "$WORK" || fail "redis-server did not restart"
UP_T=$(date +%s.%N)
info "redis answering again at +$(python3 -c "print(round($UP_T-$T0,2))") s"
for p in "${BG_PIDS[@]}"; do wait "$p"; done
BG_PIDS=()
END_T=$(date +%s.%N)
for b in A B; do
	"$AIQOSCTL" --socket "$WORK/$b.sock" stats --by tenant >"$WORK/stats.$b.txt" 2>&1
	"$AIQOSCTL" --socket "$WORK/$b.sock" --json stats --by tenant >"$WORK/stats.$b.json" 2>&1
	use_bed "$b"
	tb_dut curl -sf --max-time 5 "http://127.0.0.1:9470/metrics" >"$WORK/metrics.$b.txt" || fail "metrics $b"
done
sed -n '/^fleet budgets/,$p' "$WORK/stats.A.txt"
grep -E '^aiqos_fleet_(mode|sync_errors_total|outages_total|syncs_total) ' "$WORK/metrics.A.txt"
for b in A B; do
	use_bed "$b"
	tb_stop_aiqosd || fail "aiqosd $b exit status $?"
	save_bed "$b"
	tb_parse_h2load "$WORK/h2load.$b.log" || { fail "h2load $b summary"; continue; }
	if ((H2_SUCCEEDED == H2_TOTAL && H2_FAILED == 0 && H2_ERRORED == 0 && H2_TIMEOUT == 0 && H2_TOTAL > 1000)); then
		pass "side $b: $H2_SUCCEEDED of $H2_TOTAL requests succeeded, none failed, errored or timed out"
	else
		fail "side $b: total $H2_TOTAL succeeded $H2_SUCCEEDED failed $H2_FAILED errored $H2_ERRORED timeout $H2_TIMEOUT"
	fi
done

PYTHONPATH=$HERE python3 - "$WORK" "$T0" "$KILL_T" "$START_T" "$UP_T" "$END_T" <<'PY' || FAILS=$((FAILS + 1))
import datetime, json, re, sys
work, t0, kill_t, start_t, up_t, end_t = sys.argv[1], *map(float, sys.argv[2:])
from e2e_check import check, verdict
def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
admitted, offered, admitted_at = {}, {}, []
for b in "AB":
    for line in open(f"{work}/{b}/requests.jsonl"):
        r = json.loads(line)
        if r.get("endpoint") != "chat_completions":
            continue
        sec = int(ts(r["ts"]))
        offered[sec] = offered.get(sec, 0) + 1
        if r.get("budget") is None and r.get("class") == "tenant-a":
            admitted[sec] = admitted.get(sec, 0) + 1
            admitted_at.append(ts(r["ts"]))
def seconds(lo, hi):  # whole seconds inside [lo, hi)
    return [s for s in range(int(lo) + 1, int(hi)) if s + 1 <= hi]
# When each box noticed: spdlog's local-time stamps in the aiqosd logs.
def log_time(b, pat):
    for line in open(f"{work}/{b}/aiqosd.log"):
        m = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\].*" + pat, line)
        if m:
            return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return None
downs = [log_time(b, "fleet: Redis .* failed") for b in "AB"]
backs = [log_time(b, "fleet: Redis .* answers again") for b in "AB"]
# The phases as the boxes lived them (from their logs, else the script's own times).
local_lo = max(d for d in downs if d) if any(downs) else kill_t
local_hi = min(x for x in backs if x) if any(backs) else up_t
fleet_lo = max(x for x in backs if x) if any(backs) else up_t
# Fleet phases: every whole second in which both sides together were offered at least 150
# requests (a testbed stall can leave a second under-offered: shown, not checked) admits
# 100 +- 10%.
for name, secs in [("fleet, Redis up", seconds(t0 + 1, kill_t)), ("fleet again", seconds(fleet_lo, end_t - 0.5))]:
    got = [admitted.get(s, 0) for s in secs]
    off = [offered.get(s, 0) for s in secs]
    full = [g for g, o in zip(got, off) if o >= 150]
    check(len(full) > 0 and all(90 <= g <= 110 for g in full),
          f"{name}: admitted per second {got} (offered {off}; {len(full)} fully offered), want 90..110")
# Local phase (from the later box's switch to the earlier box's return): each box's token
# bucket, 30/s with a burst of 30 (full at the switch), admits between 90% of 30/s and
# 30/s plus its burst: together 54 x D .. 60 x D + 60 requests over the D seconds.
d = local_hi - local_lo
n = sum(1 for t in admitted_at if local_lo <= t < local_hi)
per_s = [admitted.get(s, 0) for s in seconds(local_lo, local_hi)]
check(d >= 1.5 and 54 * d <= n <= 60 * d + 60,
      f"local, Redis down: {n} admitted in {d:.2f} s ({n / max(d, 1e-9):.1f}/s; per whole second {per_s}), "
      f"want {54 * d:.0f}..{60 * d + 60:.0f}")
for b in "AB":
    down = log_time(b, "fleet: Redis .* failed")
    back = log_time(b, "fleet: Redis .* answers again")
    check(down is not None and 0 <= down - kill_t + 0.001 <= 0.2,
          f"box {b}: local mode {None if down is None else round((down - kill_t) * 1000)} ms after the kill (want <= 200)")
    # up_t is when this script's redis-cli first saw PONG (it polls every 20 ms plus a fork):
    # an upper bound of when Redis could answer; start_t when redis-server was launched.
    check(back is not None and start_t <= back and back - up_t <= 0.2,
          f"box {b}: fleet mode {None if back is None else round((back - start_t) * 1000)} ms after redis-server was "
          f"launched, {None if back is None else round((back - up_t) * 1000)} ms after this script saw its first PONG "
          f"(want <= 200)")
    st = json.load(open(f"{work}/stats.{b}.json"))
    f = st.get("fleet", {})
    check(f.get("mode") == "fleet" and f.get("outages") == 1 and f.get("sync_errors", 0) >= 1,
          f"box {b}: stats --by tenant fleet: mode {f.get('mode')}, outages {f.get('outages')}, sync errors {f.get('sync_errors')}")
    m = open(f"{work}/metrics.{b}.txt").read()
    check(re.search(r"^aiqos_fleet_sync_errors_total [1-9]", m, re.M) is not None and
          re.search(r"^aiqos_fleet_sync_lag_seconds ", m, re.M) is not None,
          f"box {b}: Prometheus exports aiqos_fleet_sync_errors_total and aiqos_fleet_sync_lag_seconds")
sys.exit(verdict())
PY
