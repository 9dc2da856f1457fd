# frozen_string_literal: true

# Ruby client benchmark, swiftgrpc or the grpc gem: unary calls of a 5-byte request to
# /swiftgrpc.examples.Echo/Get, every response checked.
#   ruby rb_client_bench.rb swiftgrpc|grpc TARGET N
# Prints BENCH lines: sequential latency (p50/p99), and calls/s with 16 threads.
$LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
impl, target, n = ARGV[0], ARGV[1], Integer(ARGV[2])
METHOD = "/swiftgrpc.examples.Echo/Get"
REQ = "hello"
if impl == "grpc"
  require "grpc"
  id = ->(x) { x }
  stub = GRPC::ClientStub.new(target, :this_channel_is_insecure)
  call = -> { stub.request_response(METHOD, REQ, id, id, deadline: Time.now + 10) }
else
  require "swiftgrpc"
  ch = SwiftGRPC::Channel.new(target)
  call = -> { ch.request_response(METHOD, REQ, timeout: 10) }
end
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
call.call
failed = 0
lat = Array.new(n) do
  t = clock.call
  failed += 1 unless call.call == REQ
  clock.call - t
end.sort
printf("BENCH %s latency n=%d p50_us=%.1f p99_us=%.1f failed=%d\n", impl, n,
       lat[n / 2] * 1e6, lat[(n * 0.99).to_i] * 1e6, failed)
threads = 16
per = n / threads
bad = Queue.new
t0 = clock.call
threads.times.map do
  Thread.new do
    b = 0
    per.times { b += 1 unless call.call == REQ }
    bad << b
  end
end.each(&:join)
el = clock.call - t0
failed = threads.times.sum { bad.pop }
printf("BENCH %s threads16 calls=%d calls_per_s=%.0f failed=%d\n", impl, threads * per,
       threads * per / el, failed)
