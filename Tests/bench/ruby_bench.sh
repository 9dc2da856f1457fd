#!/usr/bin/env bash
# Ruby hosts and clients, one run: h2load -c 2 -m 16 against the same Ruby echo handler on
# swiftgrpc and on the grpc gem's server, every response verified (DATA bytes must be
# requests x 17: a call the gem rejected for lack of threads carries no message and fails the
# check); the three ways of delivering events to Ruby (pull queue, ffi callback + hand-off,
# ffi callback answering inline); then the Ruby clients against the C echo server.
#   Tests/bench/ruby_bench.sh [--requests N] [--runs R] [--calls N] [--build-dir DIR]
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
source "$root/Tests/bench/h2load_lib.sh"
url() { echo "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get"; }

echo "== servers: h2load -n $n -c 2 -m 16, 17-byte echo, median of $runs, every response verified"
start rb_swift ruby "$root/Tests/bench/rb_echo_server.rb" swiftgrpc 32
measure "Ruby swiftgrpc server (2 loop threads)" "$(url)" 1 swift
stop_server
SWIFTGRPC_LOOP_THREADS=1 start rb_swift1 ruby "$root/Tests/bench/rb_echo_server.rb" swiftgrpc 32
measure "Ruby swiftgrpc server (1 loop thread)" "$(url)" 1 swift1
stop_server
start rb_grpc ruby "$root/Tests/bench/rb_echo_server.rb" grpc 64
measure "Ruby grpc gem server (pool 64)" "$(url)" 1 grpc
stop_server
awk -v a="$result_swift" -v b="$result_grpc" 'BEGIN{printf "ratio swiftgrpc / grpc gem: %.1fx (0 rejections: every run verified)\n", a/b}'

echo "== event delivery to Ruby (rb_dispatch.rb, minimal echo)"
for mode in queue callback callback-inline; do
  start "dispatch-$mode" ruby "$root/Tests/bench/rb_dispatch.rb" "$mode"
  measure "dispatch: $mode" "$(url)" 1
  stop_server
done

echo "== clients: $calls unary calls each, against the C echo server (2 loops, 2 workers)"
start c_server "$build/echo_server" --port 0 --workers 2 --until-signal
for impl in swiftgrpc grpc; do
  out=$(ruby "$root/Tests/bench/rb_client_bench.rb" "$impl" "127.0.0.1:$port" "$calls")
  echo "$out"
  if echo "$out" | grep -q "failed=[1-9]"; then echo "failed calls: result not verified"; exit 1; fi
done
stop_server
