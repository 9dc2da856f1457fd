# frozen_string_literal: true

# `require "swiftgrpc/grpc"` as the only gRPC library of a process (the grpc gem is never
# loaded): code written for the gem, generated stubs included, runs on swiftgrpc. Run in a
# process of its own by Tests/ruby/test_grpc_compat.rb (the other Ruby tests load the gem).
require_relative "../generated"
require "swiftgrpc/grpc"
require "svc_services_pb" # its `require 'grpc'` finds swiftgrpc's GRPC

Msg = Swiftgrpc::Pytest::Msg

# A servicer written for the gem.
class GemStyleServicer < Swiftgrpc::Pytest::Svc::Service
  def unary(req, call)
    case req.text
    when "not-found" then raise GRPC::NotFound.new("no such thing", { "x-why" => "absent" })
    when "boom" then raise "boom"
    when "metadata" then Msg.new(text: call.metadata["x-in"].to_s)
    else
      call.output_metadata["x-trailer"] = "t"
      Msg.new(text: req.text)
    end
  end

  def server_stream(req, _call)
    Array.new(req.n) { |i| Msg.new(text: i.to_s) }
  end

  def client_stream(call)
    Msg.new(text: call.each_remote_read.map(&:text).join(","))
  end

  def bidi(requests, _call)
    requests.lazy.map { |r| Msg.new(text: r.text.upcase) }
  end
end

class TestGrpcCompat < Minitest::Test
  def self.server(**kw)
    s = GRPC::RpcServer.new(**kw)
    port = s.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
    s.handle(GemStyleServicer)
    Thread.new { s.run_till_terminated }
    s.wait_till_running(10) or raise "the server did not start"
    [s, port]
  end

  def setup
    @server, @port = TestGrpcCompat.server
    @stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{@port}", :this_channel_is_insecure)
  end

  def teardown
    @server.stop
    assert_equal :stopped, @server.running_state
  end

  def test_the_gem_is_never_loaded
    assert GRPC::SWIFTGRPC
    refute require("grpc"), "require 'grpc' must find swiftgrpc's GRPC loaded"
    refute require("grpc/errors")
    refute defined?(GRPC::Core::Call), "the gem's C extension must not be loaded"
    # (the gem's generated pb files, such as its health service, may be loaded: not its library)
    assert_empty($LOADED_FEATURES.grep(%r{grpc_c\.so|/gems/grpc-[\d.]+/src/ruby/lib/}))
    assert_same SwiftGRPC::Error, GRPC::BadStatus
    assert_kind_of SwiftGRPC::Server, @server
  end

  def test_generated_stubs_call_every_kind
    assert_equal "hi", @stub.unary(Msg.new(text: "hi")).text
    assert_equal %w[0 1 2], @stub.server_stream(Msg.new(n: 3)).map(&:text)
    assert_equal "a,b", @stub.client_stream([Msg.new(text: "a"), Msg.new(text: "b")]).text
    assert_equal %w[A B], @stub.bidi([Msg.new(text: "a"), Msg.new(text: "b")]).map(&:text)
    # the gem's positional options Hash
    assert_equal "v", @stub.unary(Msg.new(text: "metadata"), { metadata: { "x-in" => "v" } }).text
  end

  def test_status_errors_are_the_gems_classes
    e = assert_raises(GRPC::NotFound) { @stub.unary(Msg.new(text: "not-found")) }
    assert_kind_of GRPC::BadStatus, e
    assert_equal [GRPC::Core::StatusCodes::NOT_FOUND, "no such thing", "absent"],
                 [e.code, e.details, e.metadata["x-why"]]
    st = e.to_status
    assert_kind_of Struct::Status, st
    assert_equal [5, "no such thing"], [st.code, st.details]
    assert_nil e.to_rpc_status
    e = assert_raises(GRPC::Unknown) { @stub.unary(Msg.new(text: "boom")) }
    assert_equal "RuntimeError: boom", e.details
  end

  def test_bad_status_constructors_are_the_gems
    assert_equal [5, "x", { "k" => "v" }], GRPC::BadStatus.new(5, "x", { "k" => "v" }).then { |e| [e.code, e.details, e.metadata] }
    assert_equal "unknown cause", GRPC::NotFound.new.details
    assert_equal "d", GRPC::Aborted.new("m", {}, "d").debug_error_string
    assert_instance_of GRPC::Unavailable, GRPC::BadStatus.new_status_exception(14, "down")
    odd = GRPC::BadStatus.new_status_exception(99, "odd")
    assert_instance_of GRPC::BadStatus, odd
    assert_equal 99, odd.code
    assert_raises(GRPC::GenericService::DuplicateRpcName) do
      Class.new { include GRPC::GenericService; rpc :A, Msg, Msg; rpc :A, Msg, Msg } # rubocop:disable Style/Semicolon
    end
  end

  def test_time_consts_and_deadlines
    tc = GRPC::Core::TimeConsts
    assert_same tc::ZERO, tc.from_relative_time(nil)
    assert_same tc::INFINITE_FUTURE, tc.from_relative_time(-1)
    assert_in_delta Time.now.to_f + 2, tc.from_relative_time(2).to_f, 0.5
    assert_raises(TypeError) { tc.from_relative_time("soon") }
    assert_equal "hi", @stub.unary(Msg.new(text: "hi"), deadline: tc::INFINITE_FUTURE).text
    assert_raises(GRPC::DeadlineExceeded) { @stub.unary(Msg.new(text: "hi"), deadline: tc::ZERO) }
    assert_equal "hi", @stub.unary(Msg.new(text: "hi"), deadline: tc.from_relative_time(5)).text
  end

  def test_return_op_gives_metadata_and_trailers
    op = @stub.unary(Msg.new(text: "x"), return_op: true)
    assert_equal "x", op.execute.text
    assert_equal "t", op.trailing_metadata["x-trailer"]
    refute op.cancelled?
  end

  def test_core_channel_as_channel_override
    ch = GRPC::Core::Channel.new("127.0.0.1:#{@port}", {}, :this_channel_is_insecure)
    assert_equal GRPC::Core::ConnectivityStates::IDLE, ch.connectivity_state
    stub = Swiftgrpc::Pytest::Svc::Stub.new("ignored:1", :this_channel_is_insecure, channel_override: ch)
    assert_equal "via", stub.unary(Msg.new(text: "via")).text
    assert_equal GRPC::Core::ConnectivityStates::READY, ch.connectivity_state
    refute ch.watch_connectivity_state(GRPC::Core::ConnectivityStates::READY, Time.now + 0.2)
    ch.close
    assert_raises(TypeError) { GRPC::Core::Channel.new("127.0.0.1:1", {}, :nonsense) }
  end

  def test_compression_options_as_channel_args
    args = GRPC::Core::CompressionOptions.new(default_algorithm: :gzip).to_channel_arg_hash
    stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{@port}", :this_channel_is_insecure, channel_args: args)
    assert_equal "z" * 1000, stub.unary(Msg.new(text: "z" * 1000)).text
    assert_raises(ArgumentError) { GRPC::Core::CompressionOptions.new(default_level: :high) }
    assert_raises(ArgumentError) { GRPC::Core::CompressionOptions.new(disabled_algorithms: [:gzip]) }
  end

  def test_connect_md_proc_adds_initial_metadata
    s, port = TestGrpcCompat.server(connect_md_proc: ->(method, md) { { "x-connect" => "#{method} #{md['x-in']}" } })
    stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
    op = stub.unary(Msg.new(text: "x"), metadata: { "x-in" => "1" }, return_op: true)
    op.execute
    assert_equal "/swiftgrpc.pytest.Svc/Unary 1", op.metadata["x-connect"]
  ensure
    s&.stop
  end

  def test_a_raising_connect_md_proc_ends_the_call_unknown
    s, port = TestGrpcCompat.server(connect_md_proc: ->(_m, _md) { raise ArgumentError, "nope" })
    stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
    e = assert_raises(GRPC::Unknown) { stub.unary(Msg.new(text: "x")) }
    assert_equal "ArgumentError: nope", e.details
  ensure
    s&.stop
  end

  def test_server_interceptor_of_the_gems_class
    seen = []
    auth = Class.new(GRPC::ServerInterceptor) do
      define_method(:request_response) do |request:, call:, method:, &blk|
        seen << [request.text, method.name]
        raise GRPC::Unauthenticated, "who are you" unless call.metadata["authorization"] == "ok"

        blk.call
      end
    end
    s, port = TestGrpcCompat.server(interceptors: [auth.new])
    stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
    assert_raises(GRPC::Unauthenticated) { stub.unary(Msg.new(text: "a")) }
    assert_equal "b", stub.unary(Msg.new(text: "b"), metadata: { "authorization" => "ok" }).text
    assert_equal [["a", :unary], ["b", :unary]], seen
  ensure
    s&.stop
  end

  def test_options_swiftgrpc_does_not_have_are_refused
    e = assert_raises(ArgumentError) do
      Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:1", :this_channel_is_insecure, propagate_mask: 0xffff)
    end
    assert_match(/propagate/, e.message)
    e = assert_raises(ArgumentError) do
      @stub.unary(Msg.new(text: "x"), parent: Object.new)
    end
    assert_match(/parent/, e.message)
    assert_raises(ArgumentError) do
      Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:1", :this_channel_is_insecure, channel_args: { "grpc.census" => 1 })
    end
  end

  def test_what_the_gem_has_and_swiftgrpc_does_not_is_named_when_used
    e = assert_raises(NotImplementedError) { GRPC::Core::XdsChannelCredentials.new(nil) }
    assert_match(/xDS/, e.message)
    assert_raises(NotImplementedError) { GRPC::Core::XdsServerCredentials.new(nil) }
    e = assert_raises(ArgumentError) do
      Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:1", :this_channel_is_insecure,
                                       propagate_mask: GRPC::Core::PropagateMasks::DEADLINE)
    end
    assert_match(/propagate/, e.message)
    # code that rescues the gem's low-level errors loads and runs; swiftgrpc raises statuses
    got = begin
      @stub.unary(Msg.new(text: "not-found"))
    rescue GRPC::Core::CallError, GRPC::Core::OutOfTime
      :low_level
    rescue GRPC::BadStatus => e
      e.code
    end
    assert_equal GRPC::Core::StatusCodes::NOT_FOUND, got
  end

  def test_rpc_server_options_are_checked
    assert_raises(ArgumentError) { GRPC::RpcServer.new(pool_keep_alive: -1) }
    assert_raises(ArgumentError) { GRPC::RpcServer.new(poll_period: "soon") }
    s = GRPC::RpcServer.new(pool_keep_alive: 0.5, max_waiting_requests: 3)
    s.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
    s.start
    assert s.wait_till_running(5)
    s.stop
    assert s.stopped?
  end

  def test_logger_and_version
    assert_respond_to GRPC.logger, :info
    assert_nil GRPC.logger.warn("nothing")
    assert_equal SwiftGRPC::VERSION, GRPC::VERSION
  end

  def test_the_gems_health_checker_is_served
    require "grpc/health/checker" # the gem's pure-Ruby health service, from its pb directory
    checker = Grpc::Health::Checker.new
    checker.add_status("svc", Grpc::Health::V1::HealthCheckResponse::ServingStatus::SERVING)
    s = GRPC::RpcServer.new
    port = s.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
    s.handle(checker)
    s.start
    stub = Grpc::Health::V1::Health::Stub.new("127.0.0.1:#{port}", :this_channel_is_insecure)
    resp = stub.check(Grpc::Health::V1::HealthCheckRequest.new(service: "svc"))
    assert_equal :SERVING, resp.status
    assert_raises(GRPC::NotFound) { stub.check(Grpc::Health::V1::HealthCheckRequest.new(service: "other")) }
  ensure
    s&.stop
  end
end
