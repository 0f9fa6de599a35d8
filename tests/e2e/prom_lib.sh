# shellcheck shell=bash
# A Prometheus server of the test's own that scrapes one exporter every second, for the
# prometheus tests. Source it after lib.sh; its files go to $E2E_DIR.
#   PROM_IN=(tb_dut)               where the exporter listens, if not here: the command prefix that
#                                  runs Prometheus and the queries there (default: here)
#   prom_check_metrics FILE WHAT   promtool check metrics on FILE: PASS or FAIL (nothing without promtool)
#   prom_start JOB TARGET PORT     Prometheus scraping TARGET (host:port) as job JOB, its web server
#                                  on 127.0.0.1:PORT, its log in prometheus.log; sets PROM_PID
#   prom_query EXPR                the first sample's value ("" if none)
#   prom_wait_for EXPR SECONDS     until EXPR has a non-empty, non-zero value (prints it); fails
#                                  at the deadline or when Prometheus has exited
#   prom_expect_samples SECONDS EXPR...  PASS for each EXPR that has a value within SECONDS, else FAIL
PROM_IN=()
PROM_PID=
PROM_PORT=

prom_check_metrics() {
	command -v promtool >/dev/null || return 0
	if promtool check metrics <"$1" >"$E2E_DIR/promtool.txt" 2>&1; then
		pass "promtool check metrics on $2"
	else
		fail "promtool check metrics on $2: $(head -5 "$E2E_DIR/promtool.txt")"
	fi
}

prom_start() {
	local prometheus
	prometheus=$(command -v prometheus) || { fail "no prometheus binary"; return 1; }
	PROM_PORT=$3
	cat >"$E2E_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: $1
    static_configs:
      - targets: ['$2']
YAML
	"${PROM_IN[@]}" "$prometheus" --config.file="$E2E_DIR/prometheus.yml" --storage.tsdb.path="$E2E_DIR/tsdb" \
		--web.listen-address="127.0.0.1:$PROM_PORT" >"$E2E_DIR/prometheus.log" 2>&1 &
	PROM_PID=$!
	BG_PIDS+=("$PROM_PID")
}

prom_query() {
	"${PROM_IN[@]}" curl -sf --max-time 2 --get --data-urlencode "query=$1" \
		"http://127.0.0.1:$PROM_PORT/api/v1/query" 2>/dev/null |
		python3 -c 'import json,sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}

prom_wait_for() {
	local end=$((SECONDS + $2)) v
	while ((SECONDS < end)); do
		v=$(prom_query "$1")
		if [[ -n $v && $v != 0 ]]; then
			echo "$v"
			return 0
		fi
		kill -0 "$PROM_PID" 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}

prom_expect_samples() {
	local secs=$1 expr v
	shift
	for expr; do
		if v=$(prom_wait_for "$expr" "$secs"); then pass "$expr = $v"; else fail "$expr has no samples"; fi
	done
}
