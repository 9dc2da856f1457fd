#!/usr/bin/env bash
# Server throughput, small echo, h2load -c 2 -m 16, in one run: the C host on libswiftgrpc
# (workers answering from their own threads; push and pull), nghttpd serving a static file of
# the response's size (the HTTP/2 ceiling), and grpcio's aio server. Every gRPC figure is
# verified: h2load's DATA byte count must equal requests x 17 (one 17-byte gRPC frame each).
#   Tests/bench/h2load_echo.sh [--requests N] [--runs R] [--build-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" n=200000 runs=3
source "$root/Tests/bench/h2load_lib.sh"
bench_args "$@"

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
