# frozen_string_literal: true

# Client calls under a fiber scheduler (the async gem's, Debian ruby-async): the calls of many
# fibers of one thread are in flight at once, against the grpc gem's server and ours.
require_relative "test_helper"
require "minitest/autorun"
require "async"

class TestFibers < Minitest::Test
  include ClientHelpers

  SERVERS = %i[grpc swift].freeze

  def channel(server)
    SwiftGRPC::Channel.new("127.0.0.1:#{Servers.port(server)}")
  end

  # Runs the block in a reactor (its task's failure raises here, not only logged).
  def reactor(&blk)
    Async(&blk).wait
  end

  def unary(ch, text, **kw)
    Msg.decode(ch.request_response("/swiftgrpc.pytest.Svc/Unary", Msg.encode(Msg.new(text: text)), **kw))
  end

  def test_a_call_waits_through_the_scheduler_only_in_a_non_blocking_fiber
    refute SwiftGRPC::Runtime.scheduled?, "no scheduler outside a reactor"
    reactor do
      assert SwiftGRPC::Runtime.scheduled?, "an async task is a non-blocking fiber"
      refute Fiber.new(blocking: true) { SwiftGRPC::Runtime.scheduled? }.resume
    end
  end

  # Six fibers of one thread each start a call that the handler holds open; all six reach the
  # handler before any ends (the server records each start), which a thread blocked in one
  # call's wait could not do. Stopping a fiber then cancels its call: our handler sees it end
  # (the gem's handler cannot see a cancellation: it holds its call 3 s and is not waited for).
  SERVERS.each do |server|
    define_method("test_fibers_of_one_thread_have_their_calls_in_flight_at_once_on_#{server}") do
      ch = channel(server)
      keys = Array.new(6) { |i| "fibers-#{server}-#{i}" }
      errors = []
      threads = []
      reactor do |task|
        calls = keys.map do |key|
          task.async do
            threads << Thread.current
            unary(ch, "sleep:#{server == :swift ? 30 : 3}:#{key}", timeout: 60)
          rescue Exception => e # rubocop:disable Lint/RescueException -- Async::Stop
            errors << e
            raise
          end
        end
        # The servicer's records arrive from the server's threads; this fiber's wait on them is
        # the scheduler's too.
        keys.each { |key| assert TestServicer.wait("#{key}:started", 10), "#{key} never reached the handler" }
        assert calls.all?(&:running?), "a call ended before the last one started"
        calls.each(&:stop)
      end
      assert_equal [Thread.current], threads.uniq
      if server == :swift
        keys.each { |key| assert_equal true, wait_log(key).first, "the handler of #{key} did not see its call end" }
      end
      assert errors.all? { |e| e.is_a?(Async::Stop) }, errors.inspect
      assert_equal "echo", unary(ch, "echo").text, "the channel still serves calls"
    ensure
      ch&.close
    end
  end

  # Every kind of call at once in one reactor, against the grpc gem's server.
  def test_every_kind_of_call_runs_side_by_side_in_fibers
    ch = channel(:grpc)
    stub = stub_for(:grpc, :swift)
    results = {}
    reactor do |task|
      streams = task.async do
        results[:server_stream] = stub.server_stream(Msg.new(text: "x", n: 50)).map(&:text)
      end
      client = task.async do
        results[:client_stream] = stub.client_stream(%w[a b c].map { |t| Msg.new(text: t) }).text
      end
      bidi = task.async { results[:bidi] = stub.bidi(%w[p q].map { |t| Msg.new(text: t) }).map(&:text) }
      unaries = Array.new(20) { |i| task.async { unary(ch, "echo", metadata: { "x-i" => i.to_s }).text } }
      [streams, client, bidi].each(&:wait)
      results[:unary] = unaries.map(&:wait)
    end
    assert_equal (0...50).map(&:to_s), results[:server_stream]
    assert_equal "a,b,c", results[:client_stream]
    assert_equal %w[P Q], results[:bidi]
    assert_equal ["echo"] * 20, results[:unary]
  ensure
    ch&.close
  end

  # The pool keeps 64 drained queues for streaming calls; the queues of calls beyond that are
  # destroyed when their call ends (their descriptors too), not dropped: three rounds of 100
  # server-streaming calls in flight at once leave at most the pool's descriptors behind.
  def test_queues_beyond_the_pool_are_destroyed
    ch = channel(:swift)
    stub = stub_for(:swift, :swift)
    fds = -> { Dir.children("/proc/self/fd").size }
    round = lambda do
      reactor do |task|
        Array.new(100) { task.async { stub.server_stream(Msg.new(text: "x", n: 2)).map(&:text) } }.map(&:wait)
      end
    end
    assert_equal [%w[0 1]] * 100, round.call
    before = fds.call
    2.times { assert_equal [%w[0 1]] * 100, round.call }
    assert_operator fds.call - before, :<, 20, "descriptors of queues dropped from the pool were never closed"
  ensure
    ch&.close
  end

  # The unary calls of one thread's fibers share one queue (and one descriptor): a hundred in
  # flight at once open no queue beyond the thread's first.
  def test_unary_calls_of_a_threads_fibers_share_one_queue
    ch = channel(:swift)
    fds = -> { Dir.children("/proc/self/fd").size }
    keys = Array.new(100) { |i| "shared-#{i}" }
    texts = nil
    reactor do |task|
      assert_equal "echo", unary(ch, "echo").text # the thread's queue, made once
      before = fds.call # (the reactor's own descriptors are open by now)
      calls = keys.map { |key| task.async { unary(ch, "sleep:0.3:#{key}", timeout: 30).text } }
      keys.each { |key| assert TestServicer.wait("#{key}:started", 10), "#{key} never reached the handler" }
      assert_operator fds.call - before, :<=, 0, "calls in flight opened queues of their own"
      texts = calls.map(&:wait)
    end
    assert_equal ["slept"] * 100, texts
    mine = reactor { SwiftGRPC::FiberCalls.current.queue }
    other = Thread.new { reactor { SwiftGRPC::FiberCalls.current.queue } }.value
    refute_equal mine, other, "another thread's fibers have a queue of their own"
  ensure
    ch&.close
  end

  # The first fiber to wait polls the shared queue for all of them; stopped, it hands polling
  # to a fiber still waiting, whose call (and every other) is still answered.
  def test_stopping_the_polling_fiber_leaves_the_others_answered
    ch = channel(:swift)
    results = nil
    reactor do |task|
      first = task.async { unary(ch, "sleep:30:poller-stopped", timeout: 60) }
      assert TestServicer.wait("poller-stopped:started", 10)
      others = Array.new(5) { |i| task.async { unary(ch, "sleep:0.2:after-#{i}", timeout: 10).text } }
      5.times { |i| assert TestServicer.wait("after-#{i}:started", 10) }
      first.stop
      # (Without a fiber polling, nothing would answer them: a failure, not a hang.)
      results = task.with_timeout(20) { others.map(&:wait) }
    end
    assert_equal ["slept"] * 5, results
    assert_equal true, wait_log("poller-stopped").first, "the stopped fiber's call was not cancelled"
    assert_equal "echo", reactor { unary(ch, "echo").text }
  ensure
    ch&.close
  end

  # A deadline and an error status end their own fiber's call; the other fibers go on.
  def test_a_deadline_or_an_error_ends_only_its_own_fibers_call
    ch = channel(:swift)
    outcome = {}
    reactor do |task|
      slow = task.async do
        unary(ch, "sleep:30:fibers-deadline", timeout: 0.3)
      rescue SwiftGRPC::Error => e
        outcome[:slow] = e
        nil # (a task whose value is an exception raises it from #wait)
      end
      failing = task.async do
        unary(ch, "status:5:not here")
      rescue SwiftGRPC::Error => e
        outcome[:failing] = e
        nil
      end
      outcome[:echoes] = Array.new(10) { task.async { unary(ch, "echo").text } }.map(&:wait)
      [slow, failing].each(&:wait)
    end
    assert_instance_of SwiftGRPC::DeadlineExceeded, outcome[:slow]
    assert_instance_of SwiftGRPC::NotFound, outcome[:failing]
    assert_equal "not here", outcome[:failing].details
    assert_equal ["echo"] * 10, outcome[:echoes]
  ensure
    ch&.close
  end
end
