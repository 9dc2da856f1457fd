# frozen_string_literal: true

require_relative "test_helper"

# Connection management on a swiftgrpc server (gRFCs A8, A9) with the grpc gem's client, seen on
# the wire: max connection idle and age under their keyword names and the gem's server_args.
class ConnectionsTest < Minitest::Test
  include WireTap

  def serve(**options)
    server = SwiftGRPC::Server.new(**options)
    server.handle(TestServicer)
    port = server.add_http2_port("127.0.0.1:0")
    server.start
    [server, port]
  end

  def test_max_connection_idle_from_the_gems_server_args
    server, port = serve(server_args: { "grpc.max_connection_idle_ms" => 200 })
    seen = wiretap(port) do |tap_port|
      ch = GRPC::Core::Channel.new("127.0.0.1:#{tap_port}", {}, :this_channel_is_insecure)
      stub = Swiftgrpc::Pytest::Svc::Stub.new("", :this_channel_is_insecure, channel_override: ch)
      assert_equal "1", stub.unary(Msg.new(text: "echo", data: "1"), deadline: Time.now + 10).data
      ready = GRPC::Core::ConnectivityStates::READY
      # The GOAWAY takes the channel out of READY: an event, waited for with a deadline.
      ch.watch_connectivity_state(ready, Time.now + 10) if ch.connectivity_state == ready
      refute_equal ready, ch.connectivity_state
      assert_equal "2", stub.unary(Msg.new(text: "echo", data: "2"), deadline: Time.now + 10).data
      ch.close
    end
    # The first step of the graceful GOAWAY (largest stream id); the gem's client then closes the
    # idle connection itself, before the second step (which says "max_idle") would come.
    goaways = seen["response"]["goaways"]
    refute_empty goaways
    assert(goaways.all? { |_, code, debug| code.zero? && ["", "max_idle"].include?(debug) }, goaways.inspect)
    assert_equal 2, seen["connections"]
  ensure
    server&.stop
  end

  def test_max_connection_age_moves_calls_along_and_none_fails
    server, port = serve(max_connection_age_ms: 150, max_connection_age_grace_ms: 5000)
    seen = wiretap(port) do |tap_port|
      ch = GRPC::Core::Channel.new("127.0.0.1:#{tap_port}", {}, :this_channel_is_insecure)
      stub = Swiftgrpc::Pytest::Svc::Stub.new("", :this_channel_is_insecure, channel_override: ch)
      ready = GRPC::Core::ConnectivityStates::READY
      3.times do |i|
        assert_equal i.to_s, stub.unary(Msg.new(text: "echo", data: i.to_s), deadline: Time.now + 10).data
        ch.watch_connectivity_state(ready, Time.now + 10) if ch.connectivity_state == ready
      end
      ch.close
    end
    notices = seen["response"]["goaways"].select { |last, code, _| last == (1 << 31) - 1 && code.zero? }
    assert notices.size >= 2, seen["response"]["goaways"].inspect
    assert seen["connections"] >= 3
  ensure
    server&.stop
  end

  def test_unknown_and_bad_connection_options_are_refused
    assert_raises(ArgumentError) { SwiftGRPC::Server.new(server_args: { "grpc.enable_retries" => 1 }) }
    assert_raises(ArgumentError) { SwiftGRPC::Server.new(so_reuseport: 2) }
    assert_raises(ArgumentError) { SwiftGRPC::Server.new(keepalive_timeout_ms: 0) }
    assert_raises(ArgumentError) { SwiftGRPC::Server.new(max_ping_strikes: -1) }
    assert_raises(ArgumentError) { SwiftGRPC::Server.new(max_connection_agee_ms: 1) }
  end
end
