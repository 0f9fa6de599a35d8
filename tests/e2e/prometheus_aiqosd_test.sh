#!/usr/bin/env bash
# End-to-end: a real Prometheus server scrapes a live aiqosd. aiqosd bridges the testbed's two
# namespaces with the example policy while curl sends LLM-API requests through it; Prometheus
# (in the DUT namespace, where aiqosd's loopback-only exporter listens) must see the target up,
# per-model time-to-first-token histograms and port counters, and promtool must accept the page;
# every metric the Grafana dashboard and the alerting rules of deploy/ query must be on it.
# Exit 0 pass, 1 fail, 77 skip (not root, or no prometheus binary).
# usage: prometheus_aiqosd_test.sh AIQOSD
set -uo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
# shellcheck source=tests/e2e/prom_lib.sh
source "$HERE/prom_lib.sh"
e2e_usage 1 1 "$@"
AIQOSD=$(realpath "$1")
e2e_need_root
command -v prometheus >/dev/null || e2e_skip "no prometheus binary (apt-get install prometheus)"
e2e_testbed prometheus_aiqosd aqp
PROM_IN=(ip netns exec "$TB_NS_DUT") # aiqosd's exporter listens on the dut's loopback

tb_up || { fail "testbed"; exit 1; }
EXP_PORT=9471
tb_start_aiqosd "$AIQOSD" --policy "$REPO/config/aiqos.yaml" --ctl-socket none \
	--prometheus "127.0.0.1:$EXP_PORT" || { fail "aiqosd did not start"; exit 1; }
tb_start_h2c_server node || { fail "h2c server"; exit 1; }
# Plain answers, and one streamed (SSE tokens: time per output token, counted tokens).
for m in gpt-4o llama-3.1-8b-instruct gpt-4o-mini gpt-4o:stream; do
	stream=false
	[[ $m == *:stream ]] && stream=true && m=${m%:stream}
	code=$(tb_cli curl -s --max-time 10 --http2-prior-knowledge -o /dev/null -w '%{http_code}' \
		-H 'content-type: application/json' -d "{\"model\":\"$m\",\"messages\":[],\"stream\":$stream}" \
		"http://$TB_SRV_IP:$TB_PORT/v1/chat/completions")
	[[ $code == 200 ]] || fail "request for $m (stream $stream): HTTP $code"
done

tb_dut curl -sf --max-time 5 "http://127.0.0.1:$EXP_PORT/metrics" >"$TB_DIR/metrics.txt" ||
	{ fail "aiqosd /metrics did not answer"; exit 1; }
prom_check_metrics "$TB_DIR/metrics.txt" "aiqosd's page"

# Every metric the Grafana dashboard and the alerting rules (deploy/) query is on this page, but
# the time per output token: this server writes a stream's tokens in one burst (no time between
# them); e2e-llm-accounting checks that histogram's buckets on a live aiqosd with a paced server.
if python3 "$REPO/deploy/check_dashboard.py" "$REPO/deploy/grafana/aiqos-dashboard.json" \
	"$REPO/deploy/prometheus/aiqos-rules.yml" --scrape "$TB_DIR/metrics.txt" \
	--pending gen_ai_server_time_per_output_token_seconds_bucket \
	>"$TB_DIR/dashboard.txt" 2>&1; then
	pass "every dashboard and rule query names a metric aiqosd exports ($(grep -c '^PASS' "$TB_DIR/dashboard.txt") checks)"
	grep '^INFO' "$TB_DIR/dashboard.txt" || true
else
	fail "dashboard/rules queries: $(grep -E '^FAIL|Error' "$TB_DIR/dashboard.txt" | head -5)"
fi

prom_start aiqosd "127.0.0.1:$EXP_PORT" 9472
if v=$(prom_wait_for 'up{job="aiqosd"}' 40); then pass "Prometheus scrapes aiqosd (up=$v)"; else
	fail "target never up"; tail -5 "$TB_DIR/prometheus.log"; exit 1; fi
prom_expect_samples 15 'sum(gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="gpt-4o"})' \
	'sum(gen_ai_server_time_to_first_token_seconds_count{class="standard"})' \
	'sum(aiqos_requests_total)' 'aiqos_port_rx_packets_total{port="0"}'
v=$(prom_query 'sum(aiqos_requests_total)')
[[ $v == 4 ]] && pass "4 requests counted" || fail "aiqos_requests_total = '$v', want 4"
