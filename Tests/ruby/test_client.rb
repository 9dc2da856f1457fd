# frozen_string_literal: true

require_relative "test_helper"
require "socket"

# swiftgrpc's client specifics, against the grpc gem's server (a foreign peer) unless a test
# needs a server of its own.
class ClientTest < Minitest::Test
  include ClientHelpers

  def target
    "127.0.0.1:#{Servers.grpc_port}"
  end

  def test_wrong_types_and_bad_metadata_raise_before_anything_is_sent
    stub = SwiftStub.new(target)
    assert_raises(TypeError) { stub.unary(Msg.new(text: "echo"), metadata: { "x-a" => 1 }) }
    assert_raises(TypeError) { stub.unary(Msg.new(text: "echo"), metadata: "x-a") }
    assert_raises(TypeError) { stub.unary(Msg.new(text: "echo"), timeout: "soon") }
    assert_raises(TypeError) { stub.unary(Msg.new(text: "echo"), deadline: "tomorrow") }
    ["Upper", "has space", "", ":path", "x-bad\u00e9"].each do |key|
      assert_raises(ArgumentError, key) { stub.unary(Msg.new(text: "echo"), metadata: { key => "v" }) }
    end
    assert_raises(ArgumentError) { stub.unary(Msg.new(text: "echo"), metadata: { "x-a" => "line\nbreak" }) }
    ch = SwiftGRPC::Channel.new(target)
    assert_raises(TypeError) { ch.request_response("/swiftgrpc.pytest.Svc/Unary", 42) }
    assert_raises(TypeError) { ch.request_response(:path, "") }
    assert_raises(TypeError) { SwiftGRPC::Channel.new(nil) }
    assert_raises(ArgumentError) { SwiftGRPC::Channel.new("http://[::1") }
    assert_raises(ArgumentError) { SwiftGRPC::Channel.new(target, colour: 1) }
    assert_raises(TypeError) { SwiftGRPC::Channel.new(target, connect_timeout: "1s") }
    assert_raises(TypeError) { SwiftStub.new(target, :tls_credentials) }
    # and the channel still works afterwards
    assert_equal "echo", stub.unary(Msg.new(text: "echo")).text
  end

  def test_status_classes
    err = assert_raises(SwiftGRPC::NotFound) { SwiftStub.new("127.0.0.1:#{Servers.swift_port}").unary(Msg.new(text: "status:5:gone")) }
    assert_kind_of SwiftGRPC::Error, err
    assert_equal "gone", err.details
  end

  def test_closed_channel
    ch = SwiftGRPC::Channel.new(target)
    stub = SwiftStub.new(ch)
    assert_equal "echo", stub.unary(Msg.new(text: "echo")).text
    ch.close
    assert ch.closed?
    assert_raises(SwiftGRPC::ClosedError) { stub.unary(Msg.new(text: "echo")) }
    assert_raises(SwiftGRPC::ClosedError) { stub.server_stream(Msg.new(n: 1)).to_a }
    assert_raises(SwiftGRPC::ClosedError) { stub.bidi([].each).to_a }
  end

  def test_close_lets_calls_in_flight_finish
    ch = SwiftGRPC::Channel.new(target)
    stream = SwiftStub.new(ch).server_stream(Msg.new(n: 3))
    assert_equal "0", stream.next.text
    ch.close
    assert_equal %w[1 2], [stream.next.text, stream.next.text]
    assert_raises(StopIteration) { stream.next }
  end

  def test_unavailable_when_nothing_listens
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] } # a port that was free a moment ago
    err = assert_raises(SwiftGRPC::Unavailable) { SwiftStub.new("127.0.0.1:#{port}").unary(Msg.new) }
    assert_equal 14, err.code
    t0 = Time.now
    err = assert_raises(SwiftGRPC::DeadlineExceeded) do
      SwiftStub.new("127.0.0.1:#{port}").unary(Msg.new, wait_for_ready: true, timeout: 0.3)
    end
    assert_operator Time.now - t0, :>=, 0.25
  end

  def test_timeouts_past_and_default
    stub = SwiftStub.new(target)
    assert_raises(SwiftGRPC::DeadlineExceeded) { stub.unary(Msg.new(text: "echo"), timeout: 0) }
    assert_raises(SwiftGRPC::DeadlineExceeded) { stub.unary(Msg.new(text: "echo"), timeout: -1) }
    assert_raises(SwiftGRPC::DeadlineExceeded) { stub.unary(Msg.new(text: "echo"), deadline: Time.now - 1) }
    with_default = SwiftStub.new(target, timeout: 3)
    assert_in_delta 3.0, Float(with_default.unary(Msg.new(text: "deadline")).text), 0.3
  end

  def test_huge_deadlines_work_and_nan_is_refused
    stub = SwiftStub.new(target)
    [1e12, 1e300, Float::INFINITY, 2**70].each do |t|
      assert_equal "echo", stub.unary(Msg.new(text: "echo"), timeout: t).text, "timeout #{t}"
    end
    assert_equal "echo", stub.unary(Msg.new(text: "echo"), deadline: Time.at(2**40)).text
    assert_raises(ArgumentError) { stub.unary(Msg.new(text: "x"), timeout: Float::NAN) }
  end

  def test_connectivity_state
    ch = SwiftGRPC::Channel.new(target)
    assert_equal :idle, ch.connectivity_state
    ch.connectivity_state(true)
    state = ch.connectivity_state
    state = ch.wait_for_state_change(state, 5) until state == :ready
    assert_equal :ready, state
    assert_nil ch.wait_for_state_change(:ready, 0.05)
    assert_raises(ArgumentError) { ch.wait_for_state_change(:sideways) }
  end

  def test_failing_request_enumerator_cancels_and_raises_its_error
    stub = SwiftStub.new(target)
    requests = Enumerator.new do |y|
      y << Msg.new(text: "a")
      raise IOError, "the source broke"
    end
    err = assert_raises(IOError) { stub.client_stream(requests) }
    assert_equal "the source broke", err.message
    err = assert_raises(IOError) { stub.bidi(requests).to_a }
    assert_equal "the source broke", err.message
  end

  def test_bidi_call_driven_by_hand
    call = SwiftGRPC::Channel.new(target).bidi_call("/swiftgrpc.pytest.Svc/Bidi", Msg.method(:encode),
                                                    Msg.method(:decode))
    assert call.write(Msg.new(text: "one"))
    assert_equal "ONE", call.read.text
    call << Msg.new(text: "two")
    assert_equal "TWO", call.read.text
    call.done_writing
    assert_raises(SwiftGRPC::WrongState) { call.write(Msg.new) }
    assert_nil call.read
    assert call.status.ok?
  end

  def test_operation_cancel_from_another_thread
    key = "op-cancel"
    op = SwiftStub.new(target).unary(Msg.new(text: "sleep:10:#{key}"), return_op: true)
    t = Thread.new { op.execute rescue $! } # rubocop:disable Style/RescueModifier
    wait_log("#{key}:started")
    op.cancel
    assert_kind_of SwiftGRPC::Cancelled, t.value
    assert op.cancelled?
  end

  def test_operation_wait_as_in_the_gem
    stub = SwiftStub.new(target)
    op = stub.unary(Msg.new(text: "echo"), return_op: true)
    assert_nil op.wait # never executed: returns at once, as the gem's
    key = "op-wait"
    op = stub.unary(Msg.new(text: "sleep:0.2:#{key}"), return_op: true)
    t = Thread.new { op.execute }
    wait_log("#{key}:started")
    assert_nil op.wait
    assert op.status&.ok?, "over once wait returns"
    t.join
    stream = stub.server_stream(Msg.new(n: 3), return_op: true)
    enum = nil
    reader = Thread.new { enum = stream.execute.map(&:text) }
    reader.join
    assert_nil stream.wait
    assert_equal %w[0 1 2], enum
  end

  def test_interrupting_a_waiting_call_cancels_it
    key = "interrupted"
    # our server: the grpc gem's handlers cannot observe a client's cancellation
    stub = SwiftStub.new("127.0.0.1:#{Servers.swift_port}")
    t = Thread.new do
      stub.unary(Msg.new(text: "sleep:10:#{key}"))
    rescue Interrupt
      :interrupted
    end
    wait_log("#{key}:started")
    t.raise(Interrupt)
    assert_equal :interrupted, t.value
    ended, = wait_log(key)
    assert ended, "the server should see the call cancelled"
    assert_equal "echo", stub.unary(Msg.new(text: "echo")).text
  end

  def test_sequential_calls_reuse_queues
    stub = SwiftStub.new(target)
    200.times { |i| assert_equal i.to_s, stub.unary(Msg.new(text: "echo", data: i.to_s)).data }
  end
end
