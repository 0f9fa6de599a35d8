#!/usr/bin/env bash
# End-to-end policy reload: aiqosd (af_packet on two veths) in the testbed with the policies in
# tests/e2e/reload/, which give the same traffic a class named alpha (a.yaml) or beta (b.yaml).
# Needs root. Exit 0 = pass, 1 = fail, 77 = skipped (meson's SKIP).
#
# usage: reload_test.sh AIQOSD_BIN AIQOSCTL_BIN
#
#   hup-broken  the policy file in force is overwritten with a broken one and aiqosd gets SIGHUP:
#               it keeps running, the generation does not move, its log says the reload was
#               rejected (file:line:column), and requests are still classified alpha.
#   continuous  h2load POSTs gpt-4o chat requests for the whole phase while the policy is reloaded
#               50 times: 40 by `aiqosctl policy reload` naming b.yaml, a.yaml, b.yaml... and a
#               SIGHUP (the same file again) after every 4th. Every reload succeeds; h2load sees
#               no failure; every request-log record says alpha or beta, and a record whose span
#               (ts to ts + duration) is more than AIQOS_RELOAD_MARGIN_MS (default 50) away from any
#               reload names the class of the policy in force then.
#   ten-errors  `aiqosctl policy reload tests/unit/control/data/ten_errors.yaml`: exit 1, the
#               error names each of the ten file:line:column; generation, classes and traffic
#               are as before.
#   slow-body   an embeddings request (classified alpha from its headers) whose body is still
#               coming when the policy changes is re-evaluated by the new policy at its next frame:
#               beta, in the log too (docs/architecture.md, "Policy snapshots and reload").
#   At exit: no frame dropped for any reason, port 0 rx == port 1 tx and back, the kernels
#   received what aiqosd sent, no request record dropped.
#
# Environment: AIQOS_E2E_OUT (logs; default tests/e2e/out), AIQOS_KEEP_LOGS=1 (keep logs after a
# pass), AIQOS_TB_PREFIX (namespace prefix; default aqrl<pid>), AIQOS_RELOAD_MARGIN_MS.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
e2e_usage 2 2 "$@"
AIQOSD=$(realpath "$1")
AIQOSCTL=$(realpath "$2")
e2e_need h2load curl node ethtool /usr/bin/python3
e2e_testbed reload aqrl

PY=/usr/bin/python3
URL="http://$TB_SRV_IP:$TB_PORT"
CTL_SOCK="$TB_DIR/ctl.sock"
REQLOG="$TB_DIR/requests.jsonl"
POL_A="$HERE/reload/a.yaml"
POL_B="$HERE/reload/b.yaml"
POL_LIVE="$TB_DIR/live.yaml" # the file aiqosd starts with: a copy of a.yaml
TEN_ERRORS="$REPO/tests/unit/control/data/ten_errors.yaml"
RELOADS=50
MARGIN_MS=${AIQOS_RELOAD_MARGIN_MS:-50}

ctl() { "$AIQOSCTL" --socket "$CTL_SOCK" --timeout 5 "$@"; }

# status_get KEY...: the values at dotted paths of `aiqosctl --json status`, one a line.
status_get() {
	ctl --json status | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for path in sys.argv[1:]:
    v = d
    for k in path.split("."):
        v = v[k]
    print(v)' "$@"
}
# The class names of the policy in force, in order, space-separated.
policy_classes() {
	ctl --json policy show | "$PY" -c '
import json, sys
print(" ".join(c["name"] for c in json.load(sys.stdin)["classes"]))'
}
# classes_kept PHASE WANT: the policy in force still has the classes WANT (after a refused reload).
classes_kept() {
	local classes
	classes=$(policy_classes)
	if [[ $classes == "$2" ]]; then
		pass "$1: policy show: classes still $2"
	else
		fail "$1: classes now '$classes' (want $2)"
	fi
}

# now_s: wall clock in seconds with microseconds (the same clock aiqosd stamps records with).
now_s() { echo "${EPOCHREALTIME/,/.}"; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

CHAT_BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
PROBES="$TB_DIR/probes" # "TAG T_BEFORE T_AFTER HTTP_CODE WANT_CLASS" per tagged request
: >"$PROBES"
# probe TAG PATH BODY WANT_CLASS: one h2c POST from the client namespace to PATH?t=TAG, noted in
# $PROBES with the wall clock around it (the request log's ts must fall in between); prints the
# HTTP status.
probe() {
	local t0 t1 code
	t0=$(now_s)
	code=$(tb_cli curl -sS --max-time 10 --http2-prior-knowledge -o "$TB_DIR/curl.$1.out" -w '%{http_code}' \
		-H 'content-type: application/json' -d "$3" "$URL$2?t=$1" 2>"$TB_DIR/curl.$1.err") || true
	t1=$(now_s)
	echo "$1 $t0 $t1 ${code:-000} $4" >>"$PROBES"
	echo "$code"
}
# record_class TAG: the class of the request-log record whose path ends in ?t=TAG (waits up to 5 s
# for it: records are written once the response is complete).
record_class() {
	local i cls
	for ((i = 0; i < 50; i++)); do
		cls=$("$PY" -c '
import json, sys
tag = "?t=" + sys.argv[2]
try:
    lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
except OSError:
    lines = []
for l in lines:
    try:
        r = json.loads(l)
    except ValueError:
        continue  # a line still being written
    if (r.get("path") or "").endswith(tag):
        print(r["class"])
        break' "$REQLOG" "$1")
		if [[ -n $cls ]]; then
			echo "$cls"
			return 0
		fi
		sleep 0.1
	done
	echo "(no record)"
}
# check_request TAG PATH BODY WANT_CLASS WHAT: a request succeeds and is logged with WANT_CLASS.
check_request() {
	local code cls
	code=$(probe "$1" "$2" "$3" "$4")
	cls=$(record_class "$1")
	if [[ $code == 200 && $cls == "$4" ]]; then
		pass "$5: request answered 200 and logged as class $cls"
	else
		fail "$5: request got HTTP '$code' $(head -c 200 "$TB_DIR/curl.$1.err"), logged as '$cls' (want 200, $4)"
	fi
}
alive_check() { # WHAT
	if tb_pid_alive "$TB_AIQOSD_PID"; then pass "$1: aiqosd still running"; else fail "$1: aiqosd died"; fi
}

# ---- testbed, server, aiqosd on a copy of a.yaml ----
tb_up || { fail "testbed set-up"; exit 1; }
tb_start_h2c_server node || { fail "h2c server start-up"; exit 1; }
cp "$POL_A" "$POL_LIVE"
rm -f "$CTL_SOCK"
tb_start_aiqosd "$AIQOSD" --policy "$POL_LIVE" --stats-interval 0 --stats-json "$TB_DIR/stats.json" \
	--ctl-socket "$CTL_SOCK" --request-log "$REQLOG" --prometheus none ||
	{ fail "aiqosd start-up"; exit 1; }
for ((i = 0; i < 50; i++)); do [[ -S $CTL_SOCK ]] && break; sleep 0.1; done
[[ -S $CTL_SOCK ]] || { fail "no control socket at $CTL_SOCK"; exit 1; }

read -r gen0 file0 < <(status_get policy.generation policy.file | paste -sd' ')
classes0=$(policy_classes)
if [[ $gen0 == 1 && $file0 == "$POL_LIVE" && $classes0 == "alpha default" ]]; then
	pass "start: generation 1 from $file0, classes: $classes0"
else
	fail "start: generation '$gen0' file '$file0' classes '$classes0' (want 1, $POL_LIVE, alpha default)"
fi
check_request start /v1/chat/completions "$CHAT_BODY" alpha "start"

# ---- hup-broken: SIGHUP with a broken file in force ----
cp "$HERE/reload/broken.yaml" "$POL_LIVE"
kill -HUP "$TB_AIQOSD_PID"
for ((i = 0; i < 50; i++)); do
	failed=$(status_get policy.reloads_failed 2>/dev/null || echo "?")
	[[ $failed == 1 ]] && break
	sleep 0.1
done
alive_check "hup-broken"
read -r gen ok failed < <(status_get policy.generation policy.reloads_ok policy.reloads_failed | paste -sd' ')
if [[ $gen == "$gen0" && $ok == 0 && $failed == 1 ]]; then
	pass "hup-broken: generation still $gen, reloads_ok 0, reloads_failed 1"
else
	fail "hup-broken: generation '$gen' reloads_ok '$ok' reloads_failed '$failed' (want $gen0, 0, 1)"
fi
if grep -q 'policy reload rejected, the running policy stays' "$TB_DIR/aiqosd.log" &&
	grep -qF "$POL_LIVE:8:83: rules[0].class: unknown class 'gamma'" "$TB_DIR/aiqosd.log"; then
	pass "hup-broken: aiqosd's log says the reload was rejected, at $(basename "$POL_LIVE"):8:83"
else
	fail "hup-broken: aiqosd's log lacks the rejection or $POL_LIVE:8:83"
fi
classes_kept hup-broken "$classes0"
check_request hup-broken /v1/chat/completions "$CHAT_BODY" alpha "hup-broken"

# ---- continuous: 50 reloads during an h2load run ----
printf '%s' "$CHAT_BODY" >"$TB_DIR/body.json"
read -r gen_before ok_before < <(status_get policy.generation policy.reloads_ok | paste -sd' ')
# Long enough for the 50 reloads (about 17 s on an idle 2-CPU machine, 22 s on a busy one).
LOAD_S=35
h2_start=$(now_s)
timeout $((LOAD_S + 60)) ip netns exec "$TB_NS_CLI" h2load -D "$LOAD_S" -c 2 -m 4 -T 30 \
	-H 'content-type: application/json' -d "$TB_DIR/body.json" "$URL/v1/chat/completions" \
	>"$TB_DIR/h2load.log" 2>&1 &
H2_PID=$!
BG_PIDS+=("$H2_PID")
sleep 1

# timeline: "T0 T1 POLICY GENERATION HOW" per reload (T0 just before asking, T1 once it is in force).
: >"$TB_DIR/timeline"
cur=a
gen=$gen_before
lat_ctl=()
lat_hup=()
reload_fail=0
for ((n = 0; n < RELOADS; n++)); do
	sleep 0.3
	if ((n % 5 == 4)); then
		# SIGHUP: the file in force again (the one aiqosctl named last).
		t0=$(now_s)
		kill -HUP "$TB_AIQOSD_PID"
		newgen=
		for ((i = 0; i < 200; i++)); do
			newgen=$(status_get policy.generation 2>/dev/null || true)
			[[ $newgen == $((gen + 1)) ]] && break
			sleep 0.01
		done
		t1=$(now_s)
		how=hup
		lat_hup+=("$(ms_between "$t0" "$t1")")
	else
		[[ $cur == a ]] && cur=b || cur=a
		[[ $cur == a ]] && f=$POL_A || f=$POL_B
		t0=$(now_s)
		reply=$(ctl --json policy reload "$f" 2>"$TB_DIR/reload.err") || true
		t1=$(now_s)
		newgen=$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["generation"])' "$reply" 2>/dev/null || true)
		how=ctl
		lat_ctl+=("$(ms_between "$t0" "$t1")")
	fi
	if [[ $newgen != $((gen + 1)) ]]; then
		reload_fail=$((reload_fail + 1))
		fail "continuous: reload $((n + 1)) ($how, policy $cur): generation '$newgen', want $((gen + 1)) $(head -c 300 "$TB_DIR/reload.err" 2>/dev/null)"
		break
	fi
	gen=$newgen
	echo "$t0 $t1 $cur $gen $how" >>"$TB_DIR/timeline"
	if [[ $how == hup ]]; then
		# A tagged request between two reloads: its record must name this policy's class (checked
		# with the log below), and its ts against our clock tells how aiqosd's clock runs.
		[[ $cur == a ]] && want=alpha || want=beta
		code=$(probe "load-$n" /v1/chat/completions "$CHAT_BODY" "$want")
		[[ $code == 200 ]] || fail "continuous: tagged request after reload $((n + 1)): HTTP '$code'"
	fi
done
reloads_end=$(now_s)
h2_rc=0
wait "$H2_PID" || h2_rc=$?
h2_end=$(now_s)
BG_PIDS=()

if awk -v e="$reloads_end" -v s="$h2_start" -v d="$LOAD_S" 'BEGIN { exit !(e < s + d - 0.5) }'; then
	pass "continuous: every reload happened while h2load was running"
else
	fail "continuous: the reloads outlasted h2load's $LOAD_S s (machine too slow?)"
fi
read -r gen_after ok_after < <(status_get policy.generation policy.reloads_ok | paste -sd' ')
if ((reload_fail == 0 && ok_after - ok_before == RELOADS && gen_after == gen_before + RELOADS)); then
	pass "continuous: $RELOADS reloads ok (${#lat_ctl[@]} aiqosctl, ${#lat_hup[@]} SIGHUP), generation $gen_before -> $gen_after, reloads_ok $ok_after"
else
	fail "continuous: reloads_ok $ok_before -> $ok_after, generation $gen_before -> $gen_after (want +$RELOADS each)"
fi
lat_stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1; s += $1 } END {
	if (NR) printf "min %.1f / median %.1f / max %.1f / mean %.1f ms", v[1], v[int((NR + 1) / 2)], v[NR], s / NR }'; }
info "continuous: aiqosctl policy reload latency (command start to reply, process start-up included): $(lat_stats "${lat_ctl[@]}")"
((${#lat_hup[@]})) && info "continuous: SIGHUP to new generation visible in status (5 ms main-loop tick, 10 ms polling): $(lat_stats "${lat_hup[@]}")"
info "continuous: reloads from $(ms_between "$h2_start" "$(head -n1 "$TB_DIR/timeline" | cut -d' ' -f1)") ms to $(ms_between "$h2_start" "$reloads_end") ms into a $(ms_between "$h2_start" "$h2_end") ms h2load run"

H2_TOTAL=
# h2load -D stops counting requests done when its time is up, but a response to one of the
# requests still in flight then may still be counted under 2xx (seen: 2xx one above succeeded,
# 8 in flight): 2xx may exceed succeeded by at most the requests started and not done.
if ! tb_parse_h2load "$TB_DIR/h2load.log"; then
	fail "h2load: no summary line (exit $h2_rc); see $TB_DIR/h2load.log"
elif [[ $h2_rc == 0 && $H2_SUCCEEDED -gt 0 && $H2_SUCCEEDED == "$H2_DONE" && $H2_FAILED == 0 && $H2_ERRORED == 0 &&
	$H2_TIMEOUT == 0 && $H2_2XX -ge $H2_SUCCEEDED && $((H2_2XX - H2_SUCCEEDED)) -le $((H2_STARTED - H2_DONE)) ]]; then
	pass "h2load -D $LOAD_S -c 2 -m 4: $H2_SUCCEEDED succeeded (all $H2_DONE done), 0 failed, 0 errored, ${H2_REQPS} req/s"
else
	fail "h2load: total $H2_TOTAL started $H2_STARTED done $H2_DONE succeeded $H2_SUCCEEDED failed $H2_FAILED errored $H2_ERRORED timeout $H2_TIMEOUT 2xx ${H2_2XX:-?} (exit $h2_rc)"
fi

# ---- ten-errors: aiqosctl names a policy with ten mistakes ----
read -r gen_before failed_before < <(status_get policy.generation policy.reloads_failed | paste -sd' ')
classes_before=$(policy_classes)
[[ $classes_before == "alpha default" ]] && cls_before=alpha || cls_before=beta
t0=$(now_s)
rc=0
ctl policy reload "$TEN_ERRORS" >"$TB_DIR/ten.out" 2>"$TB_DIR/ten.err" || rc=$?
t1=$(now_s)
info "ten-errors: rejected in $(ms_between "$t0" "$t1") ms; aiqosctl said:"
sed 's/^/    /' "$TB_DIR/ten.err"
if [[ $rc == 1 ]]; then pass "ten-errors: aiqosctl exit 1"; else fail "ten-errors: aiqosctl exit $rc (want 1)"; fi
missing=()
for pos in 5:25 8:30 9:23 12:15 13:11 18:5 19:11 24:36 25:17 28:12; do
	grep -qF "$TEN_ERRORS:$pos: " "$TB_DIR/ten.err" || missing+=("$pos")
done
npos=$(grep -cE "$(basename "$TEN_ERRORS"):[0-9]+:[0-9]+: " "$TB_DIR/ten.err" || true)
if ((${#missing[@]} == 0 && npos == 10)); then
	pass "ten-errors: the error names all ten positions (5:25 8:30 9:23 12:15 13:11 18:5 19:11 24:36 25:17 28:12) and no other"
else
	fail "ten-errors: positions missing: ${missing[*]:-none}; $npos positions named (want 10)"
fi
read -r gen failed < <(status_get policy.generation policy.reloads_failed | paste -sd' ')
if [[ $gen == "$gen_before" && $failed == $((failed_before + 1)) ]]; then
	pass "ten-errors: generation still $gen, reloads_failed $failed_before -> $failed"
else
	fail "ten-errors: generation $gen_before -> $gen, reloads_failed $failed_before -> $failed (want unchanged, +1)"
fi
classes_kept ten-errors "$classes_before"
check_request ten-errors /v1/chat/completions "$CHAT_BODY" "$cls_before" "ten-errors"
alive_check "ten-errors"

# ---- slow-body: a request open across a reload takes the new policy's class ----
ctl policy reload "$POL_A" >/dev/null 2>"$TB_DIR/reload.err" || fail "slow-body: reload a.yaml: $(cat "$TB_DIR/reload.err")"
# curl -T - sends the headers at once and the body as it comes from the pipe (POST, not PUT).
{
	printf '%s' '{"model":"text-embedding-3-small","input":["first '
	sleep 1.5
	printf '%s' 'text"]}'
} | tb_cli curl -sS --max-time 10 --http2-prior-knowledge -X POST -T - -o "$TB_DIR/curl.slow-body.out" \
	-w '%{http_code}' -H 'content-type: application/json' "$URL/v1/embeddings?t=slow-body" \
	>"$TB_DIR/curl.slow-body.code" 2>"$TB_DIR/curl.slow-body.err" &
SLOW_PID=$!
BG_PIDS+=("$SLOW_PID")
sleep 0.7
ctl policy reload "$POL_B" >/dev/null 2>"$TB_DIR/reload.err" || fail "slow-body: reload b.yaml: $(cat "$TB_DIR/reload.err")"
wait "$SLOW_PID" || true
BG_PIDS=()
code=$(cat "$TB_DIR/curl.slow-body.code" 2>/dev/null || true)
cls=$(record_class slow-body)
if [[ $code == 200 && $cls == beta ]]; then
	pass "slow-body: headers under a.yaml, body end under b.yaml: 200, re-evaluated and logged as beta"
else
	fail "slow-body: HTTP '$code', logged as '$cls' (want 200, beta: an open request is re-evaluated by the policy a reload brings)"
fi
check_request after-slow /v1/embeddings '{"model":"text-embedding-3-small","input":"x"}' beta "slow-body: next request"

# ---- stop aiqosd; counters and the request log ----
stop_rc=0
tb_stop_aiqosd TERM 5 || stop_rc=$?
if [[ $stop_rc == 0 ]]; then pass "aiqosd exited 0 after SIGTERM"; else fail "aiqosd exit $stop_rc after SIGTERM"; fi

kcount() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
if "$PY" "$HERE/check_stats.py" "$TB_DIR/stats.json" \
	--kernel "cli0_rx=$(kcount "$TB_NS_CLI" cli0 rx_packets)" \
	--kernel "srv0_rx=$(kcount "$TB_NS_SRV" srv0 rx_packets)" >"$TB_DIR/stats_check.log"; then
	sed 's/^/  /' "$TB_DIR/stats_check.log"
else
	sed 's/^/  /' "$TB_DIR/stats_check.log"
	fail "stats: check_stats.py"
fi
# Stricter than check_stats.py: nothing lost at all.
if "$PY" - "$TB_DIR/stats.json" <<'PY'; then
import json, sys
st = json.load(open(sys.argv[1], encoding="utf-8"))
bad = []
ports = {p["port"]: p for p in st["ports"]}
for pid, p in sorted(ports.items()):
    for k, v in sorted(p.get("drops", {}).items()):
        if v:
            bad.append(f"port {pid} drops.{k} = {v}")
    for k in ("tx_full", "no_mbuf", "imissed"):
        if p.get(k, 0):
            bad.append(f"port {pid} {k} = {p[k]}")
for a, b in ((0, 1), (1, 0)):
    if ports[a]["rx_packets"] != ports[b]["tx_packets"]:
        bad.append(f"port {a} rx {ports[a]['rx_packets']} != port {b} tx {ports[b]['tx_packets']}")
for w in st.get("workers", []):
    n = w.get("request_records_dropped", 0)
    if n:
        bad.append(f"worker {w.get('lcore')} request_records_dropped = {n}")
if bad:
    print("FAIL: stats: " + "; ".join(bad))
    sys.exit(1)
print(f"PASS: stats: zero drops of any reason, no_mbuf/imissed 0, no request record dropped; "
      f"port0 rx {ports[0]['rx_packets']} == port1 tx, port1 rx {ports[1]['rx_packets']} == port0 tx")
PY
	:
else
	FAILS=$((FAILS + 1))
fi

# The request log against the timeline of reloads. Every record: alpha or beta. Tagged requests:
# the class wanted. h2load's records (path without ?t=): one per request h2load started, each in
# the class of the policy in force unless its span (ts to ts + duration_ms: a request open across a
# reload is re-evaluated by the new policy) comes within MARGIN_MS of a reload. Record ts is aiqosd's
# clock; the tagged requests (our clock just before and after each) measure its offset from ours,
# and the check uses ts corrected by that (a linear fit).
if "$PY" - "$REQLOG" "$TB_DIR/timeline" "$PROBES" "$MARGIN_MS" "${H2_STARTED:-0}" "${H2_SUCCEEDED:-0}" <<'PY'; then
import bisect, datetime, json, sys
log, timeline, probes_f = sys.argv[1:4]
margin_ms, h2_started, h2_ok = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
margin = margin_ms / 1000
ok = True
def out(kind, msg):
    global ok
    if kind == "FAIL":
        ok = False
    print(f"{kind}: request log: {msg}")
def epoch(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
recs = [json.loads(l) for l in open(log, encoding="utf-8") if l.strip()]
# (t0, t1, policy) of each reload; before the first, a.yaml (the start file) was in force.
tl = [(float(a), float(b), p) for a, b, p, *_ in (l.split() for l in open(timeline))]
want_cls = {"a": "alpha", "b": "beta"}

# (The slow-body request has its own check above.)
bad = [f"{r['ts']} {r['path']} class {r['class']!r}" for r in recs
       if r["class"] not in ("alpha", "beta") and not (r.get("path") or "").endswith("?t=slow-body")]
if bad:
    out("FAIL", f"{len(bad)} records in neither alpha nor beta: {bad[:5]}")
else:
    out("PASS", f"all {len(recs)} records are class alpha or beta (slow-body aside)")

# Tagged requests: their class, and aiqosd's clock minus ours (the request was seen between t0 and t1).
by_tag = {}
for r in recs:
    path = r.get("path") or ""
    if "?t=" in path:
        by_tag[path.split("?t=", 1)[1]] = r
samples, wrong_tag = [], []
for line in open(probes_f):
    tag, t0, t1, code, want = line.split()
    r = by_tag.get(tag)
    if r is None:
        wrong_tag.append(f"{tag}: no record")
        continue
    if tag.startswith("load-") and r["class"] != want:
        wrong_tag.append(f"{tag}: {r['class']} (want {want})")
    ts = epoch(r["ts"])
    lo, hi = ts - float(t1), ts - float(t0)
    samples.append((float(t0), (lo + hi) / 2, (hi - lo) / 2))
nload = sum(1 for l in open(probes_f) if l.startswith("load-"))
if wrong_tag:
    out("FAIL", f"tagged requests: {wrong_tag}")
else:
    out("PASS", f"the {nload} tagged requests sent between reloads are logged in the class of the policy then in force")
a = b = 0.0
if len(samples) >= 2:
    x0 = samples[0][0]
    xs = [s[0] - x0 for s in samples]
    ys = [s[1] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-9)
    a = my - b * mx
    resid = max(abs(y - (a + b * x)) - w for x, y, w in zip(xs, ys, (s[2] for s in samples)))
    span = xs[-1]
    out("INFO", f"aiqosd's ts minus our clock: {a * 1000:+.1f} ms at the first tagged request, "
                f"{(a + b * span) * 1000:+.1f} ms {span:.1f} s later ({b * 1e6:+.0f} ppm; "
                f"{len(samples)} samples, each +-{max(s[2] for s in samples) * 1000:.1f} ms at most, "
                f"fit off by {max(resid, 0) * 1000:.1f} ms beyond that)")
    if abs(b) > 100e-6:
        out("WARN", f"request-log ts drifts from the system clock by {b * 1000:+.2f} ms per second of uptime")
    skew = lambda t: a + b * (t - x0)
else:
    skew = lambda t: 0.0

load = [r for r in recs if r.get("path") == "/v1/chat/completions"]
starts = [t0 for t0, _, _ in tl]
counts = {}
near = wrong = during = 0
examples = []
for r in load:
    t = epoch(r["ts"])
    t -= skew(t)
    t_end = t + (r.get("duration_ms") or 0) / 1000
    counts[r["class"]] = counts.get(r["class"], 0) + 1
    i = bisect.bisect_right(starts, t) - 1  # the last reload asked for before t
    if i >= 0 and t <= tl[i][1]:
        during += 1
    if i >= 0 and t < tl[i][1] + margin:
        near += 1
        continue  # during reload i or just after it: either class
    if i + 1 < len(tl) and t_end > tl[i + 1][0] - margin:
        near += 1
        continue  # open when the next one came, or just before it: either class
    pol = tl[i][2] if i >= 0 else "a"
    if r["class"] != want_cls[pol]:
        wrong += 1
        if len(examples) < 5:
            examples.append(f"{r['ts']} stream {r.get('stream_id')} class {r['class']} but {pol}.yaml in force")
in_window = sum(1 for r in load if tl and tl[0][0] <= epoch(r["ts"]) - skew(epoch(r["ts"])) <= tl[-1][1])
out("INFO", f"h2load's {len(load)} records: alpha {counts.get('alpha', 0)}, beta {counts.get('beta', 0)}; "
            f"{in_window} seen between the first reload and the last, {during} while a reload was under way, "
            f"{near} within {margin_ms:g} ms of one, {len(load) - near} checked against the timeline")
if counts.get("alpha", 0) and counts.get("beta", 0):
    out("PASS", "both alpha and beta appear in h2load's records")
else:
    out("FAIL", f"want both classes in h2load's records, got {counts}")
if wrong:
    out("FAIL", f"{wrong} records away from any reload carry the other policy's class: {examples}")
else:
    out("PASS", f"all {len(load) - near} records more than {margin_ms:g} ms from a reload carry the class of the policy then in force")
# Clock-free: in order of their end (ts + duration: a request open across a reload is
# re-evaluated by the new policy at its connection's next frame, at the latest its last) the
# class changes once per policy change and never goes back and forth (boundaries closer than
# 1 ms count as one: with several workers each takes a new snapshot at the top of its own poll
# loop). The time of each change against the reload's [t0, t1] measures aiqosd's clock too.
seq = sorted((epoch(r["ts"]) + (r.get("duration_ms") or 0) / 1000, r["class"]) for r in load)
bounds = [seq[k][0] for k in range(1, len(seq)) if seq[k][1] != seq[k - 1][1]]
clusters = []
for t in bounds:
    if clusters and t - clusters[-1][-1] <= 0.001:
        clusters[-1].append(t)
    else:
        clusters.append([t])
changes = [(t0, t1, p) for (t0, t1, p), prev in zip(tl, ["a"] + [x[2] for x in tl]) if p != prev]
first_ok = not seq or seq[0][1] == "alpha"
if len(clusters) == len(changes) and first_ok:
    offs = [(c[0] - t1, c[0] - t0) for c, (t0, t1, _) in zip(clusters, changes)]
    out("PASS", f"in order of their end the class switches {len(changes)} times, once per policy change, never back and forth")
    if offs:
        out("INFO", f"aiqosd's ts minus our clock at the class switches: in [{offs[0][0] * 1000:+.1f}, "
                    f"{offs[0][1] * 1000:+.1f}] ms at the first, [{offs[-1][0] * 1000:+.1f}, {offs[-1][1] * 1000:+.1f}] ms at the last "
                    f"({changes[-1][0] - changes[0][0]:.1f} s later)")
else:
    short = [(round(c[0], 6), len(c)) for c in clusters][:10]
    out("FAIL", f"in order of their end the class switches at {len(clusters)} places (want {len(changes)}, one per policy change; "
                f"first record {seq[0][1] if seq else None}): {short}")
n200 = sum(1 for r in load if r.get("status") == 200 and not r.get("incomplete") and not r.get("reset"))
# h2load -D abandons the requests in flight when its time is up (neither succeeded nor
# failed): those may be logged reset or incomplete; every one that succeeded must be a 200.
if len(load) == h2_started and n200 >= h2_ok and len(load) - n200 <= h2_started - h2_ok:
    out("PASS", f"one record per request h2load started ({h2_started}); {n200} complete with 200, "
                f"{h2_ok} succeeded inside its duration")
else:
    out("FAIL", f"{len(load)} records of h2load's requests, {n200} complete with 200; h2load started {h2_started}, succeeded {h2_ok}")
sys.exit(0 if ok else 1)
PY
	:
else
	FAILS=$((FAILS + 1))
fi
