#!/usr/bin/env bash
# Python hosts and clients, one run: h2load -c 2 -m 16 against the same Python echo handler on
# swiftgrpc (sync, asyncio) and grpcio (sync, aio), every response verified (DATA bytes must be
# requests x 17); then the Python clients (swiftgrpc, grpcio) against the C echo server.
#   Tests/bench/python_bench.sh [--requests N] [--runs R] [--calls N] [--build-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" n=100000 runs=3 calls=20000
source "$root/Tests/bench/h2load_lib.sh"
bench_args "$@"
export SWIFTGRPC_LIBRARY="$build/libswiftgrpc.so" SWIFT_BACKTRACE=enable=no
url() { echo "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get"; }

echo "== servers: h2load -n $n -c 2 -m 16, 17-byte echo, median of $runs, every response verified"
for cfg in "swiftgrpc sync" "swiftgrpc aio" "grpcio sync" "grpcio aio"; do
  set -- $cfg
  start "$1-$2" python3 "$root/Tests/bench/py_echo_server.py" "$1" "$2"
  measure "Python $1 $2 server" "$(url)" 1
  stop_server
done

clients_vs_c_server swiftgrpc grpcio -- python3 "$root/Tests/bench/py_client_bench.py"
