# frozen_string_literal: true

require_relative "test_helper"
require "socket"
require "open3"

# swiftgrpc's server specifics, called by the grpc gem's client (a foreign peer) unless the
# test needs our own client's extras.
class ServerTest < Minitest::Test
  RAW = ->(x) { x }

  def setup
    @servers = []
  end

  def teardown
    @servers.each { |s| s.stop }
  end

  def serve(**opts)
    s = SwiftGRPC::Server.new(**opts)
    yield s
    port = s.add_http2_port("127.0.0.1:0")
    s.start
    @servers << s
    port
  end

  def grpc_raw(port)
    GRPC::ClientStub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
  end

  def test_exceptions_end_unknown_as_with_the_gem
    # The same servicer on the grpc gem's server and on swiftgrpc's: the same statuses.
    gem = GRPC::RpcServer.new
    gem_port = gem.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
    gem.handle(TestServicer)
    gem_thread = Thread.new { gem.run }
    gem.wait_till_running(10)
    port = serve { |s| s.handle(TestServicer) }
    %w[ArgumentError NotImplementedError RuntimeError KeyError ZeroDivisionError].each do |klass|
      got = [port, gem_port].map do |p|
        stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{p}", :this_channel_is_insecure)
        err = assert_raises(GRPC::BadStatus) { stub.unary(Msg.new(text: "raise:#{klass}")) }
        [err.code, err.details]
      end
      assert_equal got[1], got[0], klass
      assert_equal [GRPC::Core::StatusCodes::UNKNOWN, "#{klass}: raised on purpose"], got[0]
    end
    gem.stop
    gem_thread.join
    stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
    err = assert_raises(GRPC::BadStatus) { stub.unary(Msg.new(text: "swift-status:7:nope")) }
    assert_equal [7, "nope", "chosen"], [err.code, err.details, err.metadata["x-why"]]
  end

  def test_raw_handlers_of_every_kind_with_yield_and_return
    port = serve do |s|
      s.handle("/raw.R/U", :unary) { |req, _call| req.reverse }
      s.handle("/raw.R/S", :server_streaming) { |req, _call, &out| req.each_char { |c| out.call(c) } }
      s.handle("/raw.R/S2", :server_streaming) { |req, _call| [req, req] }
      s.handle("/raw.R/C", :client_streaming) { |reqs, _call| reqs.to_a.join("+") }
      s.handle("/raw.R/C1", :client_streaming) { |call| call.each_remote_read.to_a.join("-") }
      s.handle("/raw.R/B", :bidi_streaming) { |reqs| reqs.map(&:upcase) }
    end
    c = grpc_raw(port)
    assert_equal "cba", c.request_response("/raw.R/U", "abc", RAW, RAW)
    assert_equal %w[a b c], c.server_streamer("/raw.R/S", "abc", RAW, RAW).to_a
    assert_equal %w[xy xy], c.server_streamer("/raw.R/S2", "xy", RAW, RAW).to_a
    assert_equal "1+2", c.client_streamer("/raw.R/C", %w[1 2], RAW, RAW)
    assert_equal "1-2", c.client_streamer("/raw.R/C1", %w[1 2], RAW, RAW)
    assert_equal %w[A B], c.bidi_streamer("/raw.R/B", %w[a b], RAW, RAW).to_a
  end

  def test_handler_returning_the_wrong_type_is_unknown
    # (the response cannot be encoded: an exception in the handler's call, UNKNOWN as in the gem)
    port = serve { |s| s.handle("/raw.R/U", :unary) { |_req, _call| 42 } }
    err = assert_raises(GRPC::BadStatus) { grpc_raw(port).request_response("/raw.R/U", "x", RAW, RAW) }
    assert_equal GRPC::Core::StatusCodes::UNKNOWN, err.code
    assert_includes err.details, "Integer"
  end

  def test_invalid_trailing_metadata_still_answers
    port = serve do |s|
      s.handle("/raw.R/U", :unary) do |req, call|
        call.output_metadata["Bad Key"] = "v"
        req
      end
    end
    err = assert_raises(GRPC::BadStatus) { grpc_raw(port).request_response("/raw.R/U", "x", RAW, RAW) }
    assert_equal 13, err.code
  end

  def test_pool_bound_queues_calls_and_routes_cancels_with_every_thread_busy
    release = Queue.new
    ended = Queue.new
    running = Queue.new
    port = serve(pool_size: 2) do |s|
      s.handle("/raw.R/Block", :unary) do |req, call|
        call.on_cancel { ended << req }
        running << req
        release.pop
        req
      end
    end
    ch = SwiftGRPC::Channel.new("127.0.0.1:#{port}")
    ops = 4.times.map { |i| ch.request_response("/raw.R/Block", "c#{i}", return_op: true) }
    threads = ops.each_with_index.map { |op, i| Thread.new { op.execute rescue $! } } # rubocop:disable Style/RescueModifier
    first = [running.pop, running.pop].sort
    assert_equal 2, first.size
    # Both pool threads are busy: cancelling a waiting call and a running one still reaches them.
    running_idx = Integer(first[0][1])
    ops[running_idx].cancel
    assert_equal first[0], ended.pop
    4.times { release << true }
    results = threads.map(&:value)
    assert_kind_of SwiftGRPC::Cancelled, results[running_idx]
    others = results.each_with_index.reject { |_, i| i == running_idx }.map(&:first)
    assert_equal 3, others.size
    others.each { |r| assert_kind_of String, r }
  end

  # Calls that arrive together (the fibers of one client thread start them in one go): each
  # one that blocks gets a pool thread of its own while the pool has them, and the quick ones
  # are answered meanwhile. (A pool taking events in batches must keep this: a batched pool
  # that ran a batch's calls one after another, tried, fails here.)
  def test_a_batch_of_blocking_calls_gets_a_thread_each
    require "async"
    release = Queue.new
    running = Queue.new
    port = serve(pool_size: 4) do |s|
      s.handle("/raw.R/Block", :unary) do |req, _call|
        running << req
        release.pop
        req
      end
      s.handle("/raw.R/Quick", :unary) { |req, _call| req }
    end
    ch = SwiftGRPC::Channel.new("127.0.0.1:#{port}")
    started = []
    Async do |task|
      blocks = 3.times.map { |i| task.async { ch.request_response("/raw.R/Block", "b#{i}", timeout: 20) } }
      quick = 5.times.map { |i| task.async { ch.request_response("/raw.R/Quick", "q#{i}", timeout: 20) } }
      assert_equal %w[q0 q1 q2 q3 q4], task.with_timeout(10) { quick.map(&:wait) }
      # (the handlers record from the pool's threads; this fiber waits through the scheduler)
      task.with_timeout(10) { 3.times { started << running.pop } }
      3.times { release << true }
      assert_equal %w[b0 b1 b2], blocks.map(&:wait)
    end.wait
    assert_equal %w[b0 b1 b2], started.sort
  ensure
    4.times { release << true }
  end

  def test_saturated_small_pool_never_strands_a_call
    # 32 callers against 3 pool threads: calls wait in the backlog while threads are woken and
    # parked around them. A call left in the backlog with every thread back on the queue (a
    # past bug) hangs its caller until the deadline.
    port = serve(pool_size: 2) { |s| s.handle("/raw.R/U", :unary) { |req, _| req } }
    ch = SwiftGRPC::Channel.new("127.0.0.1:#{port}")
    failures = Queue.new
    32.times.map do |t|
      Thread.new do
        200.times do |i|
          got = ch.request_response("/raw.R/U", "#{t}:#{i}", timeout: 10)
          failures << got unless got == "#{t}:#{i}"
        rescue SwiftGRPC::Error => e
          failures << e
        end
      end
    end.each(&:join)
    assert_equal 0, failures.size, failures.size.positive? ? failures.pop.inspect : ""
  end

  def test_h2load_at_full_concurrency_gets_every_answer
    # h2load keeps 32 calls in flight on 2 connections, the load under which a call could be
    # stranded in the backlog (it hung h2load until its timeout); every answer is checked by
    # its DATA bytes (17 per call).
    skip "h2load (nghttp2-client) is not installed" unless system("which h2load > /dev/null")
    port = serve(pool_size: 4) { |s| s.handle("/raw.R/U", :unary) { |req, _| req } }
    req = File.join(GEN_DIR, "req.bin")
    File.binwrite(req, "\x00\x00\x00\x00\x0chello world!")
    3.times do
      out, = Open3.capture2e("timeout", "60", "h2load", "-n", "30000", "-c", "2", "-m", "16", "-d", req,
                             "-H", "content-type: application/grpc", "-H", "te: trailers",
                             "http://127.0.0.1:#{port}/raw.R/U")
      assert_match(/30000 succeeded/, out)
      assert_match(/#{30_000 * 17}\) data/, out)
    end
  end

  def test_stop_with_grace_lets_calls_finish_and_without_grace_cancels
    started = Queue.new
    port = serve do |s|
      s.handle("/raw.R/Slow", :unary) do |req, call|
        started << true
        TestServicer.wait_for_end(call, Float(req))
        call.cancelled? ? "cancelled" : "done"
      end
    end
    server = @servers.last
    ch = SwiftGRPC::Channel.new("127.0.0.1:#{port}")
    t = Thread.new { ch.request_response("/raw.R/Slow", "0.3") }
    started.pop
    server.stop(5)
    assert_equal "done", t.value
    refute server.running?

    port2 = serve do |s|
      s.handle("/raw.R/Slow", :unary) do |req, call|
        started << true
        TestServicer.wait_for_end(call, Float(req))
        "late"
      end
    end
    t = Thread.new { SwiftGRPC::Channel.new("127.0.0.1:#{port2}").request_response("/raw.R/Slow", "10") rescue $! } # rubocop:disable Style/RescueModifier
    started.pop
    t0 = Time.now
    @servers.last.stop
    assert_operator Time.now - t0, :<, 5
    assert_equal SwiftGRPC::StatusCodes::UNAVAILABLE, t.value.code
  end

  def test_bad_input_raises_ruby_exceptions
    s = SwiftGRPC::Server.new
    assert_raises(ArgumentError) { SwiftGRPC::Server.new(pool_size: 0) }
    assert_raises(TypeError) { SwiftGRPC::Server.new(max_receive_message_size: "big") }
    assert_raises(ArgumentError) { s.handle("/a.B/C", :sideways) { nil } }
    assert_raises(ArgumentError) { s.handle("/a.B/C", :unary) }
    assert_raises(TypeError) { s.handle(Object) }
    assert_raises(ArgumentError) { s.handle("/a.B/L", :unary, ->(x) { x }) }
    s.handle("/a.B/C", :unary) { |r, _| r }
    assert_raises(ArgumentError) { s.handle("/a.B/C", :unary) { |r, _| r } }
    assert_raises(ArgumentError) { s.add_http2_port("not an address") }
    assert_raises(TypeError) { s.add_http2_port(50_051) }
    assert_raises(TypeError) { s.add_http2_port("127.0.0.1:0", :tls) }
    s.add_http2_port("127.0.0.1:0")
    s.start
    assert_raises(SwiftGRPC::WrongState) { s.start }
    assert_raises(SwiftGRPC::ClosedError) { s.handle("/a.B/D", :unary) { |r, _| r } }
    s.stop
    s.stop # idempotent
    assert_raises(SwiftGRPC::ClosedError) { s.start }
    assert_raises(SwiftGRPC::ClosedError) { s.add_http2_port("127.0.0.1:0") }
  end

  def test_message_size_limits
    port = serve(max_receive_message_size: 1024, max_send_message_size: 2048) do |s|
      s.handle("/raw.R/U", :unary) { |req, _| req * 3 }
    end
    c = grpc_raw(port)
    assert_equal "x" * 600, c.request_response("/raw.R/U", "x" * 200, RAW, RAW)
    err = assert_raises(GRPC::BadStatus) { c.request_response("/raw.R/U", "x" * 2000, RAW, RAW) }
    assert_equal 8, err.code
    err = assert_raises(GRPC::BadStatus) { c.request_response("/raw.R/U", "x" * 1000, RAW, RAW) }
    assert_equal 8, err.code
  end

  def test_max_concurrent_calls_answers_resource_exhausted_before_the_handler
    entered = Queue.new
    release = Queue.new
    seen = Queue.new
    port = serve(max_concurrent_calls: 1) do |s|
      s.handle("/raw.R/Hold", :unary) do |req, _|
        seen << req
        entered << true
        release.pop
        req
      end
    end
    c = grpc_raw(port)
    held = Thread.new { c.request_response("/raw.R/Hold", "a", RAW, RAW) }
    entered.pop
    err = assert_raises(GRPC::BadStatus) { c.request_response("/raw.R/Hold", "b", RAW, RAW) }
    assert_equal GRPC::Core::StatusCodes::RESOURCE_EXHAUSTED, err.code
    assert_equal "Concurrent RPC limit exceeded!", err.details
    release << true
    assert_equal "a", held.value
    release << true # the place is back: the next call is served
    assert_equal "c", c.request_response("/raw.R/Hold", "c", RAW, RAW)
    assert_equal %w[a c], [seen.pop, seen.pop] # "b" never reached the handler
    assert seen.empty?
    assert_raises(ArgumentError) { SwiftGRPC::Server.new(max_concurrent_calls: -1) }
  end

  def test_metadata_to_send_goes_out_with_the_response_as_in_the_gem
    port = serve do |s|
      s.handle("/raw.R/U", :unary) do |req, call|
        call.metadata_to_send["x-initial"] = "u"
        req
      end
      s.handle("/raw.R/S", :server_streaming) do |req, call|
        call.merge_metadata_to_send("x-initial" => "s")
        [req, req]
      end
      s.handle("/raw.R/Bad", :unary) do |req, call|
        call.metadata_to_send["Bad Key"] = "x"
        req
      end
    end
    c = grpc_raw(port)
    op = c.request_response("/raw.R/U", "a", RAW, RAW, return_op: true)
    assert_equal "a", op.execute
    assert_equal "u", op.metadata["x-initial"]
    op = c.server_streamer("/raw.R/S", "b", RAW, RAW, return_op: true)
    assert_equal %w[b b], op.execute.to_a
    assert_equal "s", op.metadata["x-initial"]
    err = assert_raises(GRPC::BadStatus) { c.request_response("/raw.R/Bad", "c", RAW, RAW) }
    assert_equal GRPC::Core::StatusCodes::INTERNAL, err.code
    assert_includes err.details, "invalid initial metadata"
  end

  def test_unix_socket_and_peer
    path = File.join(GEN_DIR, "srv.sock")
    s = SwiftGRPC::Server.new
    s.handle("/raw.R/Peer", :unary) { |_req, call| call.peer }
    assert_equal 0, s.add_http2_port("unix:#{path}")
    s.start
    @servers << s
    assert_match(/\Aunix:/, SwiftGRPC::Channel.new("unix:#{path}").request_response("/raw.R/Peer", ""))
    port = serve { |x| x.handle(TestServicer) }
    peer = SwiftStub.new("127.0.0.1:#{port}").unary(Msg.new(text: "peer")).text
    assert_match(/\Aipv4:127\.0\.0\.1:\d+\z/, peer)
  end

  def test_writes_after_the_call_ended_raise_cancelled_in_the_handler
    seen = Queue.new
    port = serve do |s|
      s.handle("/raw.R/S", :server_streaming) do |_req, call|
        call.on_cancel { seen << :cancel_callback }
        begin
          loop do
            call.write("tick")
            sleep 0.001
          end
        rescue SwiftGRPC::Cancelled => e
          seen << e.class
          raise
        end
      end
    end
    stream = SwiftGRPC::Channel.new("127.0.0.1:#{port}").server_streamer("/raw.R/S", "")
    assert_equal "tick", stream.next
    stream.cancel
    assert_equal [:cancel_callback, SwiftGRPC::Cancelled].sort_by(&:to_s), [seen.pop, seen.pop].sort_by(&:to_s)
  end

  # probe_host (swiftgrpc_server_probe): the handler runs once per in-process round trip; bad
  # use is refused; a handler that does not answer in time is cancelled.
  def test_probe_host
    seen = Queue.new
    release = Queue.new
    cancelled = Queue.new
    server = SwiftGRPC::Server.new(pool_size: 4)
    server.handle("/probe.P/Get", :unary) { |req, call| seen << [req, call.peer]; req }
    server.handle("/probe.P/Stream", :server_streaming) { |req, _call| [req] }
    server.handle("/probe.P/Hold", :unary) do |req, call|
      call.on_cancel { cancelled << :cancelled }
      release.pop
      req
    end
    assert_raises(SwiftGRPC::WrongState) { server.probe_host("/probe.P/Get", "x") }
    server.add_http2_port("127.0.0.1:0")
    server.start
    @servers << server
    per_call = server.probe_host("/probe.P/Get", "ping", iterations: 100, timeout: 30)
    assert_operator per_call, :>, 0
    assert_equal [["ping", "inproc"]] * 100, Array.new(100) { seen.pop(true) }
    assert_raises(ArgumentError) { server.probe_host("/probe.P/Nope", "x") }
    assert_raises(SwiftGRPC::WrongState) { server.probe_host("/probe.P/Stream", "x") }
    assert_raises(ArgumentError) { server.probe_host("/probe.P/Get", "x", iterations: 0) }
    assert_raises(TypeError) { server.probe_host("/probe.P/Get", 5) }
    assert_raises(Timeout::Error) { server.probe_host("/probe.P/Hold", "x", timeout: 0.1) }
    assert_equal :cancelled, Timeout.timeout(10) { cancelled.pop }
    release << :go
  end
end

# For the tests that bind the raw ABI themselves.
module RawABI
  N = SwiftGRPC::Native

  # Calls a raw constructor (its last argument the out handle), asserts it succeeded, and
  # returns the handle.
  def make(function, *args)
    out = FFI::MemoryPointer.new(:uint64)
    assert_equal 0, N.public_send(function, *args, out), function.to_s
    out.read_uint64
  end
end

# The raw ABI through the ffi gem, as a host binding it itself would: a batch host fn answering
# the grpc gem's calls inside the batch (each CALL exactly once).
class TestBatchHostFn < Minitest::Test
  include RawABI

  def test_batch_host_fn_answers_a_burst_of_gem_calls
    rt = make(:swiftgrpc_runtime_create, 1)
    srv = make(:swiftgrpc_server_create, rt)
    tokens = []
    fn = FFI::Function.new(:void, %i[pointer size_t pointer], blocking: false) do |events, count, _ud|
      events.read_array_of_pointer(count).each do |ptr|
        f = ptr.get_bytes(0, N::EVENT_SIZE).unpack(N::EVENT_LAYOUT)
        next unless f[0] == N::EVENT_CALL

        tokens << f[2]
        body = FFI::Pointer.new(f[13]).get_bytes(0, f[14])
        N.swiftgrpc_host_complete(srv, f[2], body.reverse, body.bytesize, 0, nil, nil, 0)
      end
    end
    assert_equal 0, N.swiftgrpc_register_host_batch_fn(srv, "/raw.B/Rev", N::KIND_UNARY, fn, nil)
    port = FFI::MemoryPointer.new(:int)
    assert_equal 0, N.swiftgrpc_server_listen(srv, "127.0.0.1:0", port)
    assert_equal 0, N.swiftgrpc_server_start(srv)
    raw = ->(x) { x }
    stub = GRPC::ClientStub.new("127.0.0.1:#{port.read_int}", :this_channel_is_insecure)
    replies = 20.times.map { |i| Thread.new { stub.request_response("/raw.B/Rev", "m#{i}", raw, raw, deadline: Time.now + 10) } }
    assert_equal(20.times.map { |i| "m#{i}".reverse }, replies.map(&:value))
    assert_equal 20, tokens.uniq.size
  ensure
    N.swiftgrpc_server_destroy(srv) if srv
    N.swiftgrpc_runtime_destroy(rt) if rt
  end
end

# swiftgrpc_queue_fd from Ruby: an IO on the descriptor (IO.select, a fiber scheduler) becomes
# readable when an event lands on the empty queue, and is clear again after a read.
class TestQueueFd < Minitest::Test
  include RawABI

  def test_queue_fd_is_readable_once_an_event_lands
    rt = make(:swiftgrpc_runtime_create, 1)
    q = make(:swiftgrpc_queue_create, rt)
    fd_out = FFI::MemoryPointer.new(:int)
    fd_out.write_int(-1)
    assert_equal N::E_NULL_ARGUMENT, N.swiftgrpc_queue_fd(q, nil)
    assert_equal N::E_BAD_HANDLE, N.swiftgrpc_queue_fd(rt, fd_out)
    assert_equal(-1, fd_out.read_int)
    assert_equal 0, N.swiftgrpc_queue_fd(q, fd_out)
    io = IO.for_fd(fd_out.read_int, autoclose: false)
    assert_nil IO.select([io], nil, nil, 0)
    ch = make(:swiftgrpc_channel_create, rt, "127.0.0.1:1", nil, 0)
    make(:swiftgrpc_client_call_start, ch, "/a.B/C", N::KIND_UNARY, nil, 0, "x", 1,
         N::DEADLINE_NONE, 0, q, nil, nil)
    assert_equal 0, N.swiftgrpc_channel_destroy(ch) # the call's STATUS is queued
    assert_equal [[io], [], []], IO.select([io], nil, nil, 5)
    assert_equal [1].pack("Q<"), io.read_nonblock(8)
    assert_nil IO.select([io], nil, nil, 0)
    ev = FFI::MemoryPointer.new(:pointer)
    assert_equal 0, N.swiftgrpc_queue_next(q, 0, ev)
    assert_equal N::EVENT_CLIENT_STATUS, ev.read_pointer.get_bytes(0, N::EVENT_SIZE).unpack(N::EVENT_LAYOUT)[0]
    N.swiftgrpc_event_free(ev.read_pointer)
  ensure
    N.swiftgrpc_queue_destroy(q) if q
    N.swiftgrpc_runtime_destroy(rt) if rt
  end
end
