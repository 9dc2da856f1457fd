# frozen_string_literal: true

require_relative "test_helper"
require "google/rpc/status_pb"
require "grpc/google_rpc_status_utils"

# Compression and rich status with the grpc gem: a gem client that compresses calling
# swiftgrpc's server, swiftgrpc's client calling a gem server that compresses its responses,
# and google.rpc.Status details (grpc-status-details-bin) both ways.
class CompressionTest < Minitest::Test
  include ClientHelpers

  BIG = ("compressible " * 400).b
  GZIP = GRPC::Core::CompressionOptions.new(default_algorithm: :gzip).to_channel_arg_hash

  def test_gem_client_compressing_calls_swiftgrpc_server
    stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{Servers.swift_port}", :this_channel_is_insecure,
                                            channel_args: GZIP)
    assert_equal BIG, stub.unary(Msg.new(text: "echo", data: BIG), deadline: Time.now + 10).data
    assert_equal [BIG] * 3, stub.server_stream(Msg.new(n: 3, data: BIG), deadline: Time.now + 10).map(&:data)
    reply = stub.client_stream([Msg.new(text: "a", data: BIG), Msg.new(text: "b")], deadline: Time.now + 10)
    assert_equal "a,b", reply.text
  end

  def test_swiftgrpc_client_calls_a_gem_server_that_compresses
    server = GRPC::RpcServer.new(pool_size: 8, server_args: GZIP)
    port = server.add_http2_port("127.0.0.1:0", :this_port_is_insecure)
    server.handle(TestServicer)
    runner = Thread.new { server.run }
    assert server.wait_till_running(10)
    stub = SwiftStub.new("127.0.0.1:#{port}")
    assert_equal BIG, stub.unary(Msg.new(text: "echo", data: BIG), deadline: Time.now + 10).data
    assert_equal [BIG] * 3, stub.server_stream(Msg.new(n: 3, data: BIG), deadline: Time.now + 10).map(&:data)
  ensure
    server&.stop
    runner&.join(10)
  end

  def rich_status_of(metadata)
    raw = metadata["grpc-status-details-bin"]
    refute_nil raw, "no grpc-status-details-bin among #{metadata.keys}"
    status = Google::Rpc::Status.decode(raw)
    assert_equal [3, "bad request"], [status.code, status.message]
    assert_equal "the detail", Msg.decode(status.details[0].value).text
  end

  def test_gem_client_reads_the_rich_status_of_a_swiftgrpc_server
    stub = stub_for(:swift, :grpc)
    err = assert_raises(GRPC::InvalidArgument) { stub.unary(Msg.new(text: "rich-status"), deadline: Time.now + 10) }
    assert_equal "bad request", err.details
    status = err.to_rpc_status
    refute_nil status, "to_rpc_status found no details"
    assert_equal "the detail", Msg.decode(status.details[0].value).text
  end

  def test_swiftgrpc_client_reads_the_rich_status_of_a_gem_server
    [:grpc, :swift].each do |server|
      err = assert_raises(SwiftGRPC::Error) do
        stub_for(server, :swift).unary(Msg.new(text: "rich-status"), deadline: Time.now + 10)
      end
      assert_equal [3, "bad request"], [err.code, err.details]
      rich_status_of(err.metadata)
    end
  end
end
