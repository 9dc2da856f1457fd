#!/usr/bin/env bash
# Python hosts and clients, one run: h2load -c 2 -m 16 against the same Python echo handler on
# swiftgrpc (sync, asyncio) and grpcio (sync, aio), every response verified (DATA bytes must be
# requests x 17); then the Python clients (swiftgrpc, grpcio) against the C echo server.
#   Tests/bench/python_bench.sh [--requests N] [--runs R] [--calls N] [--build-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" n=100000 runs=3 calls=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) n=$2; shift ;;
    --runs) runs=$2; shift ;;
    --calls) calls=$2; shift ;;
    --build-dir) build=$2; shift ;;
  esac
  shift
done
export SWIFTGRPC_LIBRARY="$build/libswiftgrpc.so" SWIFT_BACKTRACE=enable=no
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
printf '\x00\x00\x00\x00\x0chello world!' > "$work/req.bin"
frame=17

start() {  # start <name> <command...>: sets $pid, $port
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do grep -q "listening on" "$work/$name.log" && break; sleep 0.05; done
  port=$(awk '/listening on/{print $3; exit}' "$work/$name.log")
}

measure() {  # measure <label>: median req/s of $runs verified h2load runs against $port
  local label=$1 results=()
  for _ in $(seq "$runs"); do
    h2load -n "$n" -c 2 -m 16 -d "$work/req.bin" -H "content-type: application/grpc" \
      -H "te: trailers" "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get" > "$work/out.txt" 2>&1
    local ok data rps
    ok=$(awk '/^requests:/{print $8}' "$work/out.txt")
    data=$(grep -oE '[0-9]+\) data' "$work/out.txt" | grep -oE '^[0-9]+')
    rps=$(awk '/^finished in/{gsub(",","",$4); print $4}' "$work/out.txt")
    if [ "$ok" != "$n" ] || [ "$data" != "$((n * frame))" ]; then
      echo "$label: UNVERIFIED run (succeeded=$ok, data bytes=$data, want $n and $((n * frame)))"
      cat "$work/out.txt"; exit 1
    fi
    results+=("$rps")
  done
  local median
  median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  printf '%-36s %10.0f req/s   (runs: %s)\n' "$label" "$median" "${results[*]}"
}

echo "== servers: h2load -n $n -c 2 -m 16, 17-byte echo, median of $runs, every response verified"
for cfg in "swiftgrpc sync" "swiftgrpc aio" "grpcio sync" "grpcio aio"; do
  set -- $cfg
  start "$1-$2" python3 "$root/Tests/bench/py_echo_server.py" "$1" "$2"
  measure "Python $1 $2 server"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo "== clients: $calls unary calls each, against the C echo server (2 loops, 2 workers)"
start c_server "$build/echo_server" --port 0 --workers 2 --until-signal
for impl in swiftgrpc grpcio; do
  out=$(python3 "$root/Tests/bench/py_client_bench.py" "$impl" "127.0.0.1:$port" "$calls")
  echo "$out"
  if echo "$out" | grep -q "failed=[1-9]"; then echo "failed calls: result not verified"; exit 1; fi
done
kill "$pid"; wait "$pid" 2>/dev/null || true
