#!/usr/bin/env bash
# End-to-end: a real Prometheus server scrapes aiqos's exporter. The exporter is
# metrics_fixture (tests/e2e/metrics_fixture.cpp: the real StatsAgg + MetricsServer fed
# with synthetic requests), so no dataplane or root is needed.
# Exit 0 = pass, 1 = fail, 77 = skipped (no `prometheus` binary: apt-get install prometheus).
#
# usage: prometheus_test.sh METRICS_FIXTURE_BIN
# Environment: AIQOS_E2E_OUT (logs; default tests/e2e/out), AIQOS_KEEP_LOGS=1.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
# shellcheck source=tests/e2e/prom_lib.sh
source "$HERE/prom_lib.sh"
e2e_usage 1 1 "$@"
FIXTURE=$(realpath "$1")
command -v prometheus >/dev/null || e2e_skip "no prometheus binary (Debian package prometheus)"
e2e_dir prometheus
e2e_on_fail() {
	echo "---- prometheus.log (tail) ----"
	tail -n 20 "$E2E_DIR/prometheus.log" 2>/dev/null || true
	echo "---- fixture.log ----"
	cat "$E2E_DIR/fixture.log" 2>/dev/null || true
}

# The exporter binds a free port itself and says which.
e2e_start_fixture "$FIXTURE" --listen 127.0.0.1:0 || { fail "exporter did not start"; exit 1; }
# The exporter's own output passes promtool's checks.
curl -sf "http://127.0.0.1:$EXP_PORT/metrics" >"$E2E_DIR/metrics.txt"
prom_check_metrics "$E2E_DIR/metrics.txt" "the exporter's page"
# A free port for Prometheus's own web server: ask the kernel, then let it go.
prom_start aiqos "127.0.0.1:$EXP_PORT" \
	"$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

if v=$(prom_wait_for 'up{job="aiqos"}' 30); then pass "target up ($v)"; else fail "target never up"; exit 1; fi
if v=$(prom_wait_for 'sum(gen_ai_server_time_to_first_token_seconds_count)' 15); then
	pass "gen_ai_server_time_to_first_token_seconds has samples ($v requests)"
else
	fail "no gen_ai_server_time_to_first_token_seconds samples"
fi
if v=$(prom_wait_for 'histogram_quantile(0.5, sum by (le) (rate(gen_ai_server_time_to_first_token_seconds_bucket[5s])))' 15); then
	pass "TTFT median over 5 s: $v s"
	python3 -c "import sys; v=float('$v'); sys.exit(0 if 0.005 <= v <= 0.4 else 1)" ||
		fail "TTFT median $v s outside the fixture's 5..305 ms"
else
	fail "histogram_quantile over the TTFT buckets gave nothing"
fi
prom_expect_samples 10 'sum(aiqos_requests_total{status_class="5xx"})' \
	'gen_ai_server_request_duration_seconds_count{gen_ai_operation_name="embeddings"}' \
	'aiqos_port_rx_packets_total{port="1"}' 'aiqos_flows_active'
# Prometheus accepted every sample (no parse errors on its side).
errs=$(prom_query 'scrape_samples_post_metric_relabeling{job="aiqos"} - scrape_samples_scraped{job="aiqos"}')
[[ $errs == 0 || -z $errs ]] && pass "no samples dropped by Prometheus" || fail "samples dropped: $errs"
