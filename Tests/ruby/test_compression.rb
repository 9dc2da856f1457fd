# frozen_string_literal: true

require_relative "test_helper"
require "google/rpc/status_pb"
require "grpc/google_rpc_status_utils"

# Compression and rich status with the grpc gem: a gem client that compresses calling
# swiftgrpc's server, swiftgrpc's client calling a gem server that compresses its responses,
# and google.rpc.Status details (grpc-status-details-bin) both ways.
class CompressionTest < Minitest::Test
  include ClientHelpers
  include WireTap

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

  # Compressed flags of the messages that carried BIG: packed small, or plain above 5000 bytes.
  def big_flags(seen, direction)
    seen[direction]["messages"].filter_map { |_, flag, n| flag if flag == 1 || n > 5000 }
  end

  def encodings(seen, direction)
    key = direction == "request" ? ":path" : ":status"
    seen[direction]["headers"].select { |h| h.key?(key) }.map { |h| h["grpc-encoding"] }
  end

  def test_swiftgrpc_client_compresses_toward_a_gem_server
    seen = wiretap(Servers.grpc_port) do |port|
      channel = SwiftGRPC::Channel.new("127.0.0.1:#{port}", compression: :gzip)
      stub = SwiftStub.new("127.0.0.1:#{port}", channel_override: channel)
      assert_equal BIG, stub.unary(Msg.new(text: "echo", data: BIG), deadline: Time.now + 10).data
      # The gem's way to choose one call's compression: gRPC C-core's metadata key.
      plain = stub.unary(Msg.new(text: "echo", data: BIG), deadline: Time.now + 10,
                         metadata: { "grpc-internal-encoding-request" => "identity" })
      assert_equal BIG, plain.data
      call = channel.bidi_call("/swiftgrpc.pytest.Svc/Bidi", Msg.method(:encode), Msg.method(:decode),
                               deadline: Time.now + 10)
      call.write(Msg.new(text: "a", data: BIG))
      call.write_flag = SwiftGRPC::WriteFlags::NO_COMPRESS
      call.write(Msg.new(text: "b", data: BIG))
      call.done_writing
      assert_equal %w[A B], call.each.map(&:text)
      channel.close
    end
    assert_equal ["gzip", nil, "gzip"], encodings(seen, "request")
    assert_equal [1, 0, 1, 0], big_flags(seen, "request")
    assert_equal [0, 0, 0, 0], big_flags(seen, "response")
  end

  def test_the_gems_compression_channel_args_are_honoured
    seen = wiretap(Servers.grpc_port) do |port|
      stub = SwiftStub.new("127.0.0.1:#{port}", channel_args: GZIP)
      assert_equal BIG, stub.unary(Msg.new(text: "echo", data: BIG), deadline: Time.now + 10).data
    end
    assert_equal ["gzip"], encodings(seen, "request")
    assert_equal [1], big_flags(seen, "request")
    target = "127.0.0.1:#{Servers.grpc_port}"
    only_identity = GRPC::Core::CompressionOptions.new(disabled_algorithms: [:gzip]).to_channel_arg_hash
    err = assert_raises(ArgumentError) { SwiftStub.new(target, channel_args: only_identity) }
    assert_match(/grpc.compression_enabled_algorithms_bitset/, err.message)
    high = GRPC::Core::CompressionOptions.new(default_level: :high).to_channel_arg_hash
    assert_raises(ArgumentError) { SwiftStub.new(target, channel_args: high) }
  end

  def test_bad_compression_choices_are_refused
    target = "127.0.0.1:#{Servers.swift_port}"
    [:brotli, 3, -1, nil.to_s].each do |bad|
      assert_raises(ArgumentError) { SwiftGRPC::Channel.new(target, compression: bad) }
      assert_raises(ArgumentError) { SwiftGRPC::Server.new(compression: bad) }
    end
    stub = SwiftStub.new(target)
    assert_raises(ArgumentError) do
      stub.unary(Msg.new(text: "echo"), metadata: { "grpc-internal-encoding-request" => "snappy" })
    end
    call = SwiftGRPC::Channel.new(target).bidi_call("/swiftgrpc.pytest.Svc/Bidi")
    assert_raises(ArgumentError) { call.write_flag = 1 } # the gem's BUFFER_HINT: not supported
    call.cancel
    # Nothing changed: the stub still works, uncompressed.
    assert_equal "x", stub.unary(Msg.new(text: "echo", data: "x"), deadline: Time.now + 10).data
  end

  # Chooses compression per call and per message.
  class ChoosingServicer < Swiftgrpc::Pytest::Svc::Service
    def unary(req, call)
      case req.text
      when "deflate" then call.set_compression(:deflate)
      when "plain" then call.write_flag = SwiftGRPC::WriteFlags::NO_COMPRESS
      when "late"
        call.send_initial_metadata
        begin
          call.set_compression(:gzip)
        rescue SwiftGRPC::WrongState => e
          return Msg.new(text: "refused: #{e.message}")
        end
      end
      Msg.new(text: req.text, data: req.data)
    end

    def server_stream(_req, call)
      Enumerator.new do |y|
        3.times do |i|
          call.write_flag = i == 1 ? SwiftGRPC::WriteFlags::NO_COMPRESS : 0
          y << Msg.new(text: i.to_s, data: BIG)
        end
      end
    end
  end

  def test_swiftgrpc_server_compresses_toward_a_gem_client
    server = SwiftGRPC::Server.new(compression: :gzip)
    server.handle(ChoosingServicer)
    port = server.add_http2_port("127.0.0.1:0")
    server.start
    late = nil
    seen = wiretap(port) do |tap_port|
      stub = Swiftgrpc::Pytest::Svc::Stub.new("127.0.0.1:#{tap_port}", :this_channel_is_insecure)
      %w[echo deflate plain].each do |text|
        assert_equal BIG, stub.unary(Msg.new(text: text, data: BIG), deadline: Time.now + 10).data
      end
      assert_equal %w[0 1 2], stub.server_stream(Msg.new, deadline: Time.now + 10).map(&:text)
      late = stub.unary(Msg.new(text: "late"), deadline: Time.now + 10).text
    end
    assert_equal %w[gzip deflate gzip gzip gzip], encodings(seen, "response")
    assert_equal [1, 1, 0, 1, 0, 1, 1], big_flags(seen, "response") # the last: the refusal, packed
    assert_match(/\Arefused: set_compression: the response headers were already sent/, late)
  ensure
    server&.stop
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
