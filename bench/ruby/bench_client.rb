# frozen_string_literal: true

# The Ruby client of the benchmark suite, swiftgrpc or the grpc gem, with the unary mode and
# output of bench/c/bench_client.c: N unary Get calls of SIZE bytes from CONC threads (1: one
# thread, with p50/p99 latency). Every response is checked ("failed" counts mismatches).
# Mode "fibers" (swiftgrpc only: the gem's calls block their thread): the calls come from
# CONC fibers of one thread under the async gem's fiber scheduler.
#   ruby bench/ruby/bench_client.rb swiftgrpc|grpc TARGET unary|fibers N CONC SIZE
# Prints one line: RESULT {json}.
$LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
require "json"
impl, target, mode = ARGV[0], ARGV[1], ARGV[2]
n, conc, size = ARGV[3..5].map { |a| Integer(a) }
abort "unknown mode #{mode}" unless %w[unary fibers].include?(mode)
abort "the grpc gem has no fiber-aware calls" if mode == "fibers" && impl == "grpc"
METHOD = "/swiftgrpc.examples.Echo/Get"
REQ = Array.new(size) { |i| (97 + i % 26).chr }.join.b.freeze
if impl == "grpc"
  require "grpc"
  id = ->(x) { x }
  stub = GRPC::ClientStub.new(target, :this_channel_is_insecure)
  call = -> { stub.request_response(METHOD, REQ, id, id, deadline: Time.now + 60) }
else
  require "swiftgrpc"
  ch = SwiftGRPC::Channel.new(target)
  call = -> { ch.request_response(METHOD, REQ, timeout: 60) }
end
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
call.call
result = { mode: mode, calls: n, concurrency: conc, size: size }
if conc == 1
  failed = 0
  t0 = clock.call
  lat = Array.new(n) do
    t = clock.call
    failed += 1 unless call.call == REQ
    clock.call - t
  end.sort
  el = clock.call - t0
  result.merge!(calls_per_s: (n / el).round, p50_us: (lat[n / 2] * 1e6).round(1),
                p99_us: (lat[(n * 0.99).to_i] * 1e6).round(1), failed: failed)
elsif mode == "fibers"
  require "async"
  per = n / conc
  failed = 0
  t0 = clock.call
  Async do |task|
    Array.new(conc) { task.async { per.times { failed += 1 unless call.call == REQ } } }.each(&:wait)
  end
  el = clock.call - t0
  result.merge!(calls: per * conc, fibers: conc, calls_per_s: (per * conc / el).round, failed: failed)
else
  per = n / conc
  bad = Queue.new
  t0 = clock.call
  Array.new(conc) do
    Thread.new do
      b = 0
      per.times { b += 1 unless call.call == REQ }
      bad << b
    end
  end.each(&:join)
  el = clock.call - t0
  result.merge!(calls: per * conc, threads: conc, calls_per_s: (per * conc / el).round,
                failed: Array.new(conc) { bad.pop }.sum)
end
puts "RESULT #{JSON.generate(result)}"
$stdout.flush
