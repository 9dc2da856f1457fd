# frozen_string_literal: true

# Interceptors with the grpc gem's classes: the same interceptors (instances of the gem's
# GRPC::ServerInterceptor / GRPC::ClientInterceptor, and of swiftgrpc's) on the gem's server
# and on swiftgrpc's, on the gem's stub and on swiftgrpc's; what they see and in which order,
# and what they change, must be the same.
require_relative "test_helper"

class TestInterceptors < Minitest::Test
  include ClientHelpers

  # Records "<name>:<kind>:<method>" before yielding, and "<name>:done" after.
  module Recording
    def initialize(name, log, fail_with: nil)
      super()
      @name = name
      @log = log
      @fail_with = fail_with
    end

    %i[request_response client_streamer server_streamer bidi_streamer].each do |kind|
      define_method(kind) do |**args, &blk|
        m = args[:method]
        label = m.is_a?(String) ? m : m.name # client: the path; server: the handler Method
        @log << "#{@name}:#{kind}:#{label}"
        @log << "#{@name}:md:#{args[:metadata]['x-seen']}" if args.key?(:metadata)
        args[:metadata]["x-seen"] = "#{args[:metadata]['x-seen']}#{@name}" if args.key?(:metadata)
        @log << "#{@name}:call:#{args[:call].class != NilClass}"
        raise @fail_with if @fail_with

        out = blk.call
        @log << "#{@name}:done"
        out
      end
    end
  end

  class GemServerInterceptor < GRPC::ServerInterceptor
    include Recording
  end

  class SwiftServerInterceptor < SwiftGRPC::ServerInterceptor
    include Recording
  end

  class GemClientInterceptor < GRPC::ClientInterceptor
    include Recording
  end

  class SwiftClientInterceptor < SwiftGRPC::ClientInterceptor
    include Recording
  end

  def start_server(impl, interceptors)
    if impl == :grpc
      s = GRPC::RpcServer.new(pool_size: 4, interceptors: interceptors)
      port = s.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
      s.handle(TestServicer)
      t = Thread.new { s.run }
      s.wait_till_running(10) or flunk "the gem's server did not start"
      [port, -> { s.stop; t.join }]
    else
      s = SwiftGRPC::Server.new(pool_size: 4, interceptors: interceptors)
      s.handle(TestServicer)
      port = s.add_http2_port("127.0.0.1:0")
      s.start
      [port, -> { s.stop }]
    end
  end

  # The server log of one unary and one bidi call through [first, second] on `impl`.
  def server_log(impl, fail_with: nil)
    log = Queue.new
    klass = impl == :grpc ? GemServerInterceptor : SwiftServerInterceptor
    # a gem interceptor on swiftgrpc's server too: both kinds are accepted
    list = [klass.new("first", log), GemServerInterceptor.new("second", log, fail_with: fail_with)]
    port, stop = start_server(impl, list)
    stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
    outcome = begin
      [stub.unary(Msg.new(text: "echo")).text, stub.bidi([Msg.new(text: "a"), Msg.new(text: "b")]).map(&:text)]
    rescue GRPC::BadStatus => e
      [e.code, e.details]
    end
    stop.call
    [outcome, Array.new(log.size) { log.pop }]
  end

  def test_server_interceptors_run_as_on_the_gems_server
    want = server_log(:grpc)
    got = server_log(:swift)
    assert_equal ["echo", %w[A B]], want[0]
    assert_equal want, got
    # the gem runs the last interceptor of the list first
    assert_equal "second:request_response:unary", got[1][0]
    assert_includes got[1], "first:bidi_streamer:bidi"
  end

  def test_a_server_interceptor_that_raises_ends_the_call_with_its_status
    want = server_log(:grpc, fail_with: GRPC::PermissionDenied.new("no entry"))
    got = server_log(:swift, fail_with: GRPC::PermissionDenied.new("no entry"))
    assert_equal [GRPC::Core::StatusCodes::PERMISSION_DENIED, "no entry"], got[0]
    assert_equal want, got
    refute(got[1].any? { |l| l.start_with?("first:") }, "the inner interceptor must not run")
  end

  def test_a_server_interceptor_that_raises_anything_else_ends_the_call_unknown
    want = server_log(:grpc, fail_with: RuntimeError.new("boom"))
    got = server_log(:swift, fail_with: RuntimeError.new("boom"))
    assert_equal [GRPC::Core::StatusCodes::UNKNOWN, "RuntimeError: boom"], got[0]
    assert_equal want, got
  end

  # The client log and results of calls through [first, second] on `impl`'s stub.
  def client_log(impl)
    log = Queue.new
    klass = impl == :grpc ? GemClientInterceptor : SwiftClientInterceptor
    list = [klass.new("first", log), GemClientInterceptor.new("second", log)]
    target = "127.0.0.1:#{Servers.port(:grpc)}"
    stub = if impl == :grpc
             Swiftgrpc::Pytest::Svc::Stub.new(target, :this_channel_is_insecure, interceptors: list)
           else
             SwiftStub.new(target, interceptors: list)
           end
    echoed = stub.unary(Msg.new(text: "echo"), metadata: { "x-seen" => "" }, return_op: true).then do |op|
      op.execute
      op.trailing_metadata["x-seen"]
    end
    streamed = stub.server_stream(Msg.new(n: 2)).map(&:text)
    sent = stub.client_stream([Msg.new(text: "a"), Msg.new(text: "b")]).text
    [[echoed, streamed, sent], Array.new(log.size) { log.pop }]
  end

  def test_client_interceptors_run_as_on_the_gems_stub
    want = client_log(:grpc)
    got = client_log(:swift)
    assert_equal want, got
    # the metadata the interceptors added reached the server (echoed back as trailers)
    assert_equal "secondfirst", got[0][0]
    assert_equal "second:request_response:/swiftgrpc.pytest.Svc/Unary", got[1][0]
  end

  def test_interceptors_must_be_interceptors
    assert_raises(TypeError) { SwiftGRPC::Server.new(interceptors: [Object.new]) }
    assert_raises(TypeError) { SwiftStub.new("127.0.0.1:1", interceptors: [Object.new]) }
    assert_raises(TypeError) { SwiftStub.new("127.0.0.1:1", interceptors: "no") }
  end
end
