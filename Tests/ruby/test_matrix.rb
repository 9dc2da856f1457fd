# frozen_string_literal: true

require_relative "test_helper"

# Every RPC kind and feature, for each pairing that involves swiftgrpc: our server called by
# the grpc gem's client and by ours, and the grpc gem's server called by our client. The same
# generated service and servicer run on both servers.
module MatrixTests
  include ClientHelpers

  def stub(**kw)
    stub_for(server, client, **kw)
  end

  def test_unary
    resp = stub.unary(Msg.new(text: "echo", data: "\x00\x01".b))
    assert_equal "echo", resp.text
    assert_equal "\x00\x01".b, resp.data
  end

  def test_server_streaming
    assert_equal %w[0 1 2 3 4], stub.server_stream(Msg.new(n: 5, data: "d")).map(&:text)
  end

  def test_server_streaming_with_a_block
    got = []
    stub.server_stream(Msg.new(n: 3)) { |m| got << m.text }
    assert_equal %w[0 1 2], got
  end

  def test_client_streaming
    resp = stub.client_stream([Msg.new(text: "a", data: "1"), Msg.new(text: "b", data: "2"),
                               Msg.new(text: "c")].each)
    assert_equal ["a,b,c", "12", 3], [resp.text, resp.data, resp.n]
  end

  def test_client_streaming_nothing_sent
    resp = stub.client_stream([].each)
    assert_equal ["", 0], [resp.text, resp.n]
  end

  def test_bidi
    out = stub.bidi(%w[x y z].map { |t| Msg.new(text: t) }.each).map(&:text)
    assert_equal %w[X Y Z], out
  end

  def test_bidi_interleaved
    # Each request is produced only after the previous response came back: a real ping-pong.
    q = Queue.new
    q << Msg.new(text: "ping0")
    requests = Enumerator.new do |y|
      3.times do
        m = q.pop
        y << m
      end
    end
    got = []
    stub.bidi(requests).each do |r|
      got << r.text
      q << Msg.new(text: "ping#{got.size}") if got.size < 3
    end
    assert_equal %w[PING0 PING1 PING2], got
  end

  def test_metadata_both_ways_including_binary
    md = { "x-text" => "hello", "x-bin" => "\x00\x01\xfe\xff".b, "x-multi" => %w[a b] }
    op = stub.unary(Msg.new(text: "echo"), metadata: md, return_op: true)
    op.execute
    tr = op.trailing_metadata
    assert_equal "hello", tr["x-text"]
    assert_equal "\x00\x01\xfe\xff".b, tr["x-bin"].b
    assert_equal %w[a b], tr["x-multi"]
  end

  def test_request_metadata_seen_by_handler
    resp = stub.unary(Msg.new(text: "metadata"), metadata: { "x-one" => "1", "x-two-bin" => "\xff".b })
    assert_includes resp.text, '["x-one", "1"]'
    assert_includes resp.text, '["x-two-bin", "\xFF"]'
  end

  def test_initial_metadata
    op = stub.unary(Msg.new(text: "initial-md"), return_op: true)
    assert_equal "ok", op.execute.text
    assert_equal "1", op.metadata["x-initial"]
    assert_equal "\x00\xff".b, op.metadata["x-initial-bin"].b
  end

  def test_every_status_code
    (1..16).each do |code|
      err = assert_raises(error_class(client)) { stub.unary(Msg.new(text: "status:#{code}:why ünïcode %")) }
      assert_equal code, err.code
      assert_equal "why ünïcode %", err.details.dup.force_encoding("UTF-8")
      assert_equal "chosen", err.metadata["x-why"]
    end
  end

  def test_deadline_exceeded
    key = "deadline-#{server}-#{client}"
    err = assert_raises(error_class(client)) do
      stub.unary(Msg.new(text: "sleep:5:#{key}"), deadline: Time.now + 0.5)
    end
    assert_equal SwiftGRPC::StatusCodes::DEADLINE_EXCEEDED, err.code
    ended, left = wait_log(key)
    assert ended, "the handler should see its call end"
    assert_in_delta 0.5, left, 0.25
  end

  def test_deadline_propagates
    resp = stub.unary(Msg.new(text: "deadline"), deadline: Time.now + 5)
    assert_in_delta 5.0, Float(resp.text), 0.3
    assert_equal "nil", stub.unary(Msg.new(text: "deadline")).text
  end

  def test_server_streaming_cancel_reaches_the_handler
    key = "cancel-ss-#{server}-#{client}"
    req = Msg.new(n: 1000, text: "sleep:0.05:#{key}")
    if client == :grpc
      op = stub.server_stream(req, return_op: true)
      enum = op.execute
      assert_equal "0", enum.next.text
      op.cancel
    else
      stream = stub.server_stream(req)
      assert_equal "0", stream.next.text
      stream.cancel
      assert_raises(SwiftGRPC::Cancelled) { stream.each { nil } }
    end
    assert_equal "ended", wait_log(key)
  end

  def test_fifty_concurrent_calls_from_threads
    s = stub
    results = Array.new(50)
    threads = 50.times.map do |i|
      Thread.new do
        results[i] = s.unary(Msg.new(text: "echo", data: "n#{i}")).data
      end
    end
    threads.each(&:join)
    assert_equal 50.times.map { |i| "n#{i}" }, results
  end

  def test_large_messages
    big = Random.new(1).bytes(3 * 1024 * 1024)
    assert_equal big, stub.unary(Msg.new(text: "echo", data: big)).data
    assert_equal [big] * 2, stub.server_stream(Msg.new(n: 2, data: big)).map(&:data)
  end

  def test_unknown_method_is_unimplemented
    target = "127.0.0.1:#{Servers.port(server)}"
    err = if client == :grpc
            s = GRPC::ClientStub.new(target, :this_channel_is_insecure)
            assert_raises(GRPC::BadStatus) { s.request_response("/swiftgrpc.pytest.Svc/Nope", "", ->(x) { x }, ->(x) { x }) }
          else
            ch = SwiftGRPC::Channel.new(target)
            assert_raises(SwiftGRPC::Unimplemented) { ch.request_response("/swiftgrpc.pytest.Svc/Nope", "") }
          end
    assert_equal SwiftGRPC::StatusCodes::UNIMPLEMENTED, err.code
  end
end

class SwiftServerGrpcClientTest < Minitest::Test
  include MatrixTests
  def server = :swift
  def client = :grpc
end

class SwiftServerSwiftClientTest < Minitest::Test
  include MatrixTests
  def server = :swift
  def client = :swift
end

class GrpcServerSwiftClientTest < Minitest::Test
  include MatrixTests
  def server = :grpc
  def client = :swift
end
