# shellcheck shell=bash
# A redis-server of the test's own for the fleet tests: a unix socket in DIR (reachable from
# every network namespace, no TCP port), no persistence, its log in DIR/redis.log. Source it.
#   redis_up DIR [redis-server options]  start it and wait for PONG (at most 2 s); sets REDIS_SOCK
#   redis_kill                           SIGKILL it (what a crash looks like), remove the socket
#   fleet_check_deps                     the programs the fleet tests run, or FAIL naming the missing one
REDIS_PID=
REDIS_SOCK=

redis_up() {
	local dir=$1 i
	shift
	REDIS_SOCK=$dir/redis.sock
	redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 777 --save '' --appendonly no \
		--dir "$dir" --loglevel warning "$@" >>"$dir/redis.log" 2>&1 </dev/null &
	REDIS_PID=$!
	for ((i = 0; i < 100; i++)); do
		[[ $(redis-cli -s "$REDIS_SOCK" ping 2>/dev/null) == PONG ]] && return 0
		sleep 0.02
	done
	return 1
}

redis_kill() {
	[[ -n $REDIS_PID ]] || return 0
	kill -KILL "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=
	rm -f "$REDIS_SOCK"
	return 0
}

fleet_check_deps() {
	local c
	for c in redis-server redis-cli h2load node python3; do
		command -v "$c" >/dev/null || { echo "FAIL: $c missing (scripts/setup installs it)"; return 1; }
	done
}
