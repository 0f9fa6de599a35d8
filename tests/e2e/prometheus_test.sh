#!/usr/bin/env bash
# End-to-end: a real Prometheus server scrapes aiqos's exporter. The exporter is
# metrics_fixture (tests/e2e/metrics_fixture.cpp: the real StatsAgg + MetricsServer fed
# with synthetic requests), so no dataplane or root is needed.
# Exit 0 = pass, 1 = fail, 77 = skipped (no `prometheus` binary: apt-get install prometheus).
#
# usage: prometheus_test.sh METRICS_FIXTURE_BIN
# Environment: AIQOS_E2E_OUT (logs; default tests/e2e/out), AIQOS_KEEP_LOGS=1.
set -euo pipefail

FIXTURE=$(realpath "${1:?usage: prometheus_test.sh METRICS_FIXTURE_BIN}")
PROMETHEUS=$(command -v prometheus || true)
if [[ -z $PROMETHEUS ]]; then
	echo "SKIP: no prometheus binary (Debian package prometheus)"
	exit 77
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_ROOT=${AIQOS_E2E_OUT:-$HERE/out}
mkdir -p "$OUT_ROOT"
DIR=$(mktemp -d "$OUT_ROOT/prometheus.XXXXXX")
FIX_PID= PROM_PID=
FAILS=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

finish() {
	local rc=$?
	trap - EXIT
	for pid in $PROM_PID $FIX_PID; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $PROM_PID $FIX_PID; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	if ((FAILS > 0)) || [[ $rc != 0 ]]; then
		echo "---- prometheus.log (tail) ----"; tail -n 20 "$DIR/prometheus.log" 2>/dev/null || true
		echo "---- fixture.log ----"; cat "$DIR/fixture.log" 2>/dev/null || true
		echo "logs: $DIR"
		exit 1
	fi
	[[ ${AIQOS_KEEP_LOGS:-0} == 1 ]] || rm -rf "$DIR"
	exit 0
}
trap finish EXIT
trap 'exit 1' INT TERM

# The exporter binds a free port itself and says which.
"$FIXTURE" --listen 127.0.0.1:0 >"$DIR/fixture.log" 2>&1 &
FIX_PID=$!
for _ in $(seq 50); do grep -q '^ready' "$DIR/fixture.log" && break; sleep 0.1; done
grep -q '^ready' "$DIR/fixture.log" || { fail "exporter did not start"; exit 1; }
EXP_PORT=$(sed -n 's/^ready port=//p' "$DIR/fixture.log")
# A free port for Prometheus's own web server: ask the kernel, then let it go.
PROM_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The exporter's own output passes promtool's checks.
if command -v promtool >/dev/null; then
	curl -sf "http://127.0.0.1:$EXP_PORT/metrics" >"$DIR/metrics.txt"
	if promtool check metrics <"$DIR/metrics.txt" >"$DIR/promtool.txt" 2>&1; then
		pass "promtool check metrics"
	else
		fail "promtool check metrics: $(cat "$DIR/promtool.txt")"
	fi
fi

cat >"$DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: aiqos
    static_configs:
      - targets: ['127.0.0.1:$EXP_PORT']
YAML
"$PROMETHEUS" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$DIR/prometheus.log" 2>&1 &
PROM_PID=$!

API="http://127.0.0.1:$PROM_PORT/api/v1/query"
# query EXPR: prints the first sample's value ("" if none).
query() {
	curl -sf --max-time 2 --get --data-urlencode "query=$1" "$API" 2>/dev/null |
		python3 -c 'import json,sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
# wait_for EXPR SECONDS: until EXPR has a non-empty, non-zero value.
wait_for() {
	local end=$((SECONDS + $2)) v
	while ((SECONDS < end)); do
		v=$(query "$1")
		if [[ -n $v && $v != 0 ]]; then echo "$v"; return 0; fi
		kill -0 "$PROM_PID" 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}

if v=$(wait_for 'up{job="aiqos"}' 30); then pass "target up ($v)"; else fail "target never up"; exit 1; fi
if v=$(wait_for 'sum(gen_ai_server_time_to_first_token_seconds_count)' 15); then
	pass "gen_ai_server_time_to_first_token_seconds has samples ($v requests)"
else
	fail "no gen_ai_server_time_to_first_token_seconds samples"
fi
if v=$(wait_for 'histogram_quantile(0.5, sum by (le) (rate(gen_ai_server_time_to_first_token_seconds_bucket[5s])))' 15); then
	pass "TTFT median over 5 s: $v s"
	python3 -c "import sys; v=float('$v'); sys.exit(0 if 0.005 <= v <= 0.4 else 1)" ||
		fail "TTFT median $v s outside the fixture's 5..305 ms"
else
	fail "histogram_quantile over the TTFT buckets gave nothing"
fi
for expr in 'sum(aiqos_requests_total{status_class="5xx"})' \
	'gen_ai_server_request_duration_seconds_count{gen_ai_operation_name="embeddings"}' \
	'aiqos_port_rx_packets_total{port="1"}' 'aiqos_flows_active'; do
	if v=$(wait_for "$expr" 10); then pass "$expr = $v"; else fail "$expr has no samples"; fi
done
# Prometheus accepted every sample (no parse errors on its side).
errs=$(query 'scrape_samples_post_metric_relabeling{job="aiqos"} - scrape_samples_scraped{job="aiqos"}')
[[ $errs == 0 || -z $errs ]] && pass "no samples dropped by Prometheus" || fail "samples dropped: $errs"
