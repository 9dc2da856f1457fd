#!/usr/bin/env bash
# Server throughput, small echo, h2load -c 2 -m 16, in one run: the C host on libswiftgrpc
# (workers answering from their own threads; push and pull), nghttpd serving a static file of
# the response's size (the HTTP/2 ceiling), and grpcio's aio server. Every gRPC figure is
# verified: h2load's DATA byte count must equal requests x 17 (one 17-byte gRPC frame each).
#   Tests/bench/h2load_echo.sh [--requests N] [--runs R] [--build-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" n=200000 runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) n=$2; shift ;;
    --runs) runs=$2; shift ;;
    --build-dir) build=$2; shift ;;
  esac
  shift
done
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
printf '\x00\x00\x00\x00\x0chello world!' > "$work/req.bin"   # 17-byte gRPC frame
cp "$work/req.bin" "$work/static.bin"
frame=17

start() {  # start <name> <command...>: runs it, waits for "listening on PORT", sets $port
  local name=$1; shift
  "$@" > "$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q "listening on" "$work/$name.log" && break; sleep 0.05; done
  port=$(awk '/listening on/{print $3; exit}' "$work/$name.log")
}

stop_server() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

measure() {  # measure <label> <url> <grpc?>: prints the median req/s of $runs runs
  local label=$1 url=$2 grpc=$3 results=()
  for _ in $(seq "$runs"); do
    local args=(-n "$n" -c 2 -m 16)
    [ "$grpc" = 1 ] && args+=(-d "$work/req.bin" -H "content-type: application/grpc" -H "te: trailers")
    h2load "${args[@]}" "$url" > "$work/out.txt" 2>&1
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
  printf '%-40s %10.0f req/s   (runs: %s)\n' "$label" "$median" "${results[*]}"
  eval "result_$4=$median"
}

echo "h2load -n $n -c 2 -m 16, 17-byte echo, median of $runs runs, every response verified"
start c_push "$build/echo_server" --port 0 --workers 2 --until-signal
measure "swiftgrpc C host (push, host threads)" "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get" 1 cpush
stop_server
start c_pull "$build/echo_server" --port 0 --workers 2 --pull --until-signal
measure "swiftgrpc C host (pull queue)" "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get" 1 cpull
stop_server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nghttpd --no-tls -d "$work" "$port" > "$work/nghttpd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
measure "nghttpd static 17-byte file" "http://127.0.0.1:$port/static.bin" 0 nghttpd
stop_server
start aio python3 "$root/Tests/bench/py_echo_server.py" grpcio aio
measure "grpcio aio server (Python)" "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get" 1 aio
stop_server
awk -v a="$result_cpush" -v b="$result_nghttpd" -v c="$result_aio" 'BEGIN{
  printf "ratios: C host (push) / nghttpd = %.2f, C host (push) / grpcio aio = %.1f\n", a/b, a/c }'
