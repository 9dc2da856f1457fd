# frozen_string_literal: true

require_relative "test_helper"
require "grpc/health/v1/health_services_pb"

# The built-in health service of a swiftgrpc server, called with the grpc gem's health stub:
# Check and Watch with statuses set from Ruby, and NOT_SERVING on a graceful stop.
class HealthTest < Minitest::Test
  H = Grpc::Health::V1
  SERVING = H::HealthCheckResponse::ServingStatus::SERVING
  NOT_SERVING = H::HealthCheckResponse::ServingStatus::NOT_SERVING

  def serve
    server = SwiftGRPC::Server.new
    server.handle(TestServicer)
    health = server.enable_health
    port = server.add_http2_port("127.0.0.1:0")
    server.start
    [server, health, H::Health::Stub.new("127.0.0.1:#{port}", :this_channel_is_insecure)]
  end

  def test_check_and_watch_with_the_gems_stub
    server, health, stub = serve
    assert_equal :SERVING, stub.check(H::HealthCheckRequest.new(service: ""), deadline: Time.now + 10).status
    err = assert_raises(GRPC::NotFound) { stub.check(H::HealthCheckRequest.new(service: "svc"), deadline: Time.now + 10) }
    assert_equal "unknown service", err.details
    health.add_status("svc", NOT_SERVING) # the gem's Checker's name and values
    assert_equal :NOT_SERVING, stub.check(H::HealthCheckRequest.new(service: "svc"), deadline: Time.now + 10).status
    seen = Queue.new
    watcher = Thread.new do
      stub.watch(H::HealthCheckRequest.new(service: "svc"), deadline: Time.now + 20).each { |r| seen << r.status }
    rescue GRPC::BadStatus => e
      seen << e.class
    end
    assert_equal :NOT_SERVING, seen.pop
    health.set("svc", :serving)
    assert_equal :SERVING, seen.pop
    server.stop # a graceful stop: NOT_SERVING first, then the Watch stream ends
    assert_equal :NOT_SERVING, seen.pop
    assert_equal GRPC::Unavailable, seen.pop
    watcher.join(10)
    assert_nil health.set("svc", SERVING), "ignored once stopping"
  ensure
    server&.stop
  end

  def test_misuse_is_refused
    server = SwiftGRPC::Server.new
    health = server.enable_health
    assert_same health, server.enable_health
    assert_raises(ArgumentError) { health.set("x", :sleeping) }
    assert_raises(ArgumentError) { health.set("x", 9) }
    assert_raises(TypeError) { health.set(:x, SERVING) }
    assert_raises(ArgumentError) { server.handle("/grpc.health.v1.Health/Check", :unary) { |r, _| r } }
    own = SwiftGRPC::Server.new
    own.handle("/grpc.health.v1.Health/Check", :unary) { |r, _| r }
    assert_raises(ArgumentError) { own.enable_health }
  end
end
