#!/usr/bin/env bash
# Instructions a server executes per call, counted by valgrind's callgrind: deterministic (the
# same build gives the same count to within a few per mille), where req/s on this 2-core VM
# swings by 20 %. It measures the library's work per call, not wake-ups and syscalls: use it to
# compare two builds of the core, and bench/run.sh for speed.
#   usage: bench/instructions.sh [CALLS] [SERVER ARGS...]   (default: 20000 --inline)
# SERVER ARGS are bench_server's options (build/bench/bench_server, built by bench/run.sh) or a
# whole server command that prints "listening on PORT", e.g.
#   bench/instructions.sh 5000 python3 bench/python/echo_server.py swiftgrpc sync
# (valgrind follows the pyenv shim's exec). The server serves a 2000-call warm-up, then
# CALLS h2load calls (-c 2 -m 16, 17-byte echo) with instrumentation on; every call must
# succeed. Prints "instructions per call: N"; with CALLGRIND_OUT=FILE keeps the profile
# (callgrind_annotate FILE shows where they go).
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-20000}
shift || true
[ $# -gt 0 ] || set -- --inline
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
printf '\0\0\0\0\014abcdefghijkl' > "$work/body"
out=${CALLGRIND_OUT:-$work/callgrind.out}
# SERVER ARGS that start with an option are bench_server's; otherwise they are a whole command
# that prints "listening on PORT" (bench/python/echo_server.py, bench/ruby/echo_server.rb).
case "$1" in -*) set -- build/bench/bench_server "$@" ;; esac
SWIFT_BACKTRACE=enable=no valgrind --tool=callgrind --trace-children=yes --instr-atstart=no --callgrind-out-file="$out" \
  "$@" > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
port=$(grep -o "listening on [0-9]*" "$work/server.log" | awk '{print $3}')
[ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }
load() {
  h2load -n "$1" -c 2 -m 16 -d "$work/body" -H "content-type: application/grpc" -H "te: trailers" \
    "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get"
}
load 2000 > /dev/null
callgrind_control -i on "$pid" > /dev/null 2>&1
result=$(load "$calls")
callgrind_control -i off "$pid" > /dev/null 2>&1
# Every call answered with its 17-byte message: HTTP 200 alone would count a failed call too.
echo "$result" | grep -q "$calls succeeded" || { echo "$result" >&2; exit 1; }
data=$(echo "$result" | sed -n 's/.*(\([0-9]*\)) data.*/\1/p')
[ "$data" = "$((calls * 17))" ] || { echo "DATA bytes $data, want $((calls * 17))" >&2; exit 1; }
# bench_server stops on SIGINT; a Python or Ruby server is ended by SIGTERM (callgrind still
# writes its counts).
case "$1" in build/bench/bench_server) kill -INT "$pid" ;; *) kill -TERM "$pid" ;; esac
wait "$pid" 2>/dev/null || true
collected=$(grep -o "Collected : [0-9]*" "$work/server.log" | awk '{n += $3} END {print n}')
echo "instructions per call: $((collected / calls))"
