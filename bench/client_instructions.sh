#!/usr/bin/env bash
# Instructions a client process executes per call, counted by valgrind's callgrind: the same
# from run to run to within about 1 %, where calls/s on this 2-core VM swings by 20 %.
#   usage: bench/client_instructions.sh CALLS CLIENT ARGS...
# CLIENT ARGS are a command of the suite's client shape (bench/ruby/bench_client.rb,
# bench/python/bench_client.py, build/bench/bench_client) with TARGET and N in place of the
# target and the call count, e.g.
#   bench/client_instructions.sh 4000 ruby bench/ruby/bench_client.rb swiftgrpc TARGET fibers N 64 12
# The server is build/bench/bench_server --inline (not instrumented). The client runs twice
# under callgrind, with CALLS/4 and CALLS calls; its start-up cancels out of the difference,
# which is divided by the difference of the calls. Every call must succeed (the client's
# "failed" is 0). Prints "instructions per call: N".
set -euo pipefail
cd "$(dirname "$0")/.."
calls=$1
shift
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
SWIFT_BACKTRACE=enable=no build/bench/bench_server --inline > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
port=$(grep -o "listening on [0-9]*" "$work/server.log" | awk '{print $3}')
[ -n "$port" ] || { cat "$work/server.log" >&2; exit 1; }
count() { # count N: instructions of one client run of N calls; the calls it made
  local args=() a
  for a in "${cmd[@]}"; do
    case "$a" in TARGET) args+=("127.0.0.1:$port") ;; N) args+=("$1") ;; *) args+=("$a") ;; esac
  done
  SWIFT_BACKTRACE=enable=no valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null \
    "${args[@]}" > "$work/client.log" 2>&1 || { tail -20 "$work/client.log" >&2; exit 1; }
  grep -q '^RESULT .*"failed": *0' "$work/client.log" || { tail -20 "$work/client.log" >&2; exit 1; }
  made=$(sed -n 's/^RESULT .*"calls": *\([0-9]*\).*/\1/p' "$work/client.log")
  echo "$(grep -o "Collected : [0-9]*" "$work/client.log" | awk '{n += $3} END {print n}') $made"
}
cmd=("$@")
read -r i1 c1 < <(count $((calls / 4)))
read -r i2 c2 < <(count "$calls")
[ "$c2" -gt "$c1" ] || { echo "the runs made $c1 and $c2 calls" >&2; exit 1; }
echo "instructions per call: $(( (i2 - i1) / (c2 - c1) ))"
