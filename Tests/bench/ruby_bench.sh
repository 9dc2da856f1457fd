#!/usr/bin/env bash
# Ruby hosts and clients, one run: h2load -c 2 -m 16 against the same Ruby echo handler on
# swiftgrpc and on the grpc gem's server, every response verified (DATA bytes must be
# requests x 17; a call answered without a message is a rejection: swiftgrpc must have none,
# the gem's are counted and reported); the three ways of delivering events to Ruby (pull queue, ffi callback + hand-off,
# ffi callback answering inline); then the Ruby clients against the C echo server.
#   Tests/bench/ruby_bench.sh [--requests N] [--runs R] [--calls N] [--build-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" n=100000 runs=3 calls=20000
source "$root/Tests/bench/h2load_lib.sh"
bench_args "$@"
export SWIFTGRPC_LIBRARY="$build/libswiftgrpc.so" SWIFT_BACKTRACE=enable=no
url() { echo "http://127.0.0.1:$port/swiftgrpc.examples.Echo/Get"; }

echo "== servers: h2load -n $n -c 2 -m 16, 17-byte echo, median of $runs, every response verified"
start rb_swift ruby "$root/Tests/bench/rb_echo_server.rb" swiftgrpc 32
measure "Ruby swiftgrpc server (2 loop threads)" "$(url)" 1 swift
stop_server
SWIFTGRPC_LOOP_THREADS=1 start rb_swift1 ruby "$root/Tests/bench/rb_echo_server.rb" swiftgrpc 32
measure "Ruby swiftgrpc server (1 loop thread)" "$(url)" 1 swift1
stop_server
# The gem answers RESOURCE_EXHAUSTED whenever no pool thread is idle at the instant a call
# arrives, however many are configured: its rejections are counted and reported, not hidden.
for pool in 64 256; do
  tolerate_rejects=1 start "rb_grpc$pool" ruby "$root/Tests/bench/rb_echo_server.rb" grpc "$pool"
  tolerate_rejects=1 measure "Ruby grpc gem server (pool $pool)" "$(url)" 1 "grpc$pool"
  stop_server
done
awk -v a="$result_swift" -v b="$result_grpc64" -v c="$result_grpc256" \
  'BEGIN{printf "ratio swiftgrpc / grpc gem: %.1fx (pool 64), %.1fx (pool 256)\n", a/b, a/c}'

echo "== event delivery to Ruby (rb_dispatch.rb, minimal echo)"
for mode in queue callback callback-inline; do
  start "dispatch-$mode" ruby "$root/Tests/bench/rb_dispatch.rb" "$mode"
  measure "dispatch: $mode" "$(url)" 1
  stop_server
done

clients_vs_c_server swiftgrpc grpc -- ruby "$root/Tests/bench/rb_client_bench.rb"
