# frozen_string_literal: true

# One servicer for the grpc gem's server and swiftgrpc's (the drop-in claim): a subclass of the
# class grpc_tools_ruby_protoc generated. The request's `text` is a command:
#   echo                 -> the request back; x-* request metadata back as trailing metadata
#   initial-md           -> sends initial metadata {"x-initial" => "1", "x-initial-bin" => 00 ff}
#   status:<code>:<msg>  -> raises GRPC::BadStatus with that code and message
#   rich-status          -> raises GRPC::BadStatus INVALID_ARGUMENT "bad request" carrying a
#                           google.rpc.Status with one detail (grpc-status-details-bin)
#   swift-status:<code>:<msg> -> raises SwiftGRPC::Error (swiftgrpc's server only)
#   raise:<Class>        -> raises that exception class
#   sleep:<secs>:<key>   -> waits until the call ends or the time passes; records
#                           [cancelled?, seconds remaining at the start] under <key>
#   deadline             -> the seconds remaining, as text
#   peer                 -> call.peer
#   metadata             -> the request metadata, inspected
#   auth                 -> data: call.peer_cert (PEM, "" if none); text: the authorization and
#                           x-* request metadata, inspected
# ServerStream: `n` messages "i" (sleep:<secs>:<key>: pauses between them, records "ended" when
#   the call is cancelled). ClientStream: texts joined with ","; data concatenated.
#   Bidi: each text upper-cased, in order.
require "google/rpc/status_pb"

class TestServicer < Swiftgrpc::Pytest::Svc::Service
  LOG = {}
  LOCK = Mutex.new
  CV = ConditionVariable.new

  def self.record(key, value)
    LOCK.synchronize do
      LOG[key] = value
      CV.broadcast
    end
  end

  # @return the value recorded under key, nil if none came within secs
  def self.wait(key, secs)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + secs
    LOCK.synchronize do
      until LOG.key?(key)
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return nil if left <= 0

        CV.wait(LOCK, left)
      end
      LOG[key]
    end
  end

  # Waits until the call ends or secs pass; true if it ended.
  def self.wait_for_end(call, secs)
    new.wait_for_end(call, secs)
  end

  def wait_for_end(call, secs)
    if call.respond_to?(:on_cancel) # swiftgrpc: an event
      q = Queue.new
      call.on_cancel { q << true }
      t = Thread.new { sleep secs; q << false } # the time limit of the handler's "work"
      ended = q.pop
      t.kill
      ended
    else # the grpc gem has no cancellation callback and does not flag deadlines: poll
      limit = Time.now + secs
      left = remaining(call)
      deadline = left ? Time.now + left : limit + 1
      sleep 0.01 until call.cancelled? || Time.now > deadline || Time.now > limit
      call.cancelled? || Time.now > deadline
    end
  end

  def remaining(call)
    left = call.deadline && call.deadline.to_f - Time.now.to_f
    left.nil? || left.abs > 1e6 ? nil : left # the grpc gem's "no deadline" is a far-away Time
  end

  def unary(req, call)
    cmd = req.text
    case cmd
    when "echo"
      call.metadata.each { |k, v| call.output_metadata[k] = v if k.start_with?("x-") }
      Msg.new(text: cmd, data: req.data)
    when "initial-md"
      call.send_initial_metadata("x-initial" => "1", "x-initial-bin" => "\x00\xff".b)
      Msg.new(text: "ok")
    when /\Astatus:(\d+):(.*)\z/m
      raise GRPC::BadStatus.new_status_exception(Integer(Regexp.last_match(1)), Regexp.last_match(2),
                                                 { "x-why" => "chosen" })
    when "rich-status" # a google.rpc.Status with a detail, as the gem's users send it
      detail = Google::Protobuf::Any.new(type_url: "type.googleapis.com/swiftgrpc.pytest.Msg",
                                         value: Msg.encode(Msg.new(text: "the detail")))
      status = Google::Rpc::Status.new(code: 3, message: "bad request", details: [detail])
      raise GRPC::BadStatus.new_status_exception(3, "bad request",
                                                 { "grpc-status-details-bin" => Google::Rpc::Status.encode(status) })
    when /\Aswift-status:(\d+):(.*)\z/m
      raise SwiftGRPC::Error.for(Integer(Regexp.last_match(1)), Regexp.last_match(2), { "x-why" => "chosen" })
    when /\Araise:(\w+)\z/
      raise Object.const_get(Regexp.last_match(1)), "raised on purpose"
    when /\Asleep:([\d.]+):(.+)\z/
      key = Regexp.last_match(2)
      left = remaining(call)
      TestServicer.record("#{key}:started", true)
      ended = wait_for_end(call, Float(Regexp.last_match(1)))
      TestServicer.record(key, [ended, left])
      # An ended call gets no OK: the gem's server cannot tell that its deadline passed, and an
      # OK sent right at the deadline could reach the client before its own timer fires.
      raise GRPC::BadStatus.new_status_exception(GRPC::Core::StatusCodes::DEADLINE_EXCEEDED, "the call ended") if ended

      Msg.new(text: "slept")
    when "deadline" then Msg.new(text: remaining(call).inspect)
    when "peer" then Msg.new(text: call.peer)
    when "metadata" then Msg.new(text: call.metadata.sort.inspect)
    when "auth"
      md = call.metadata.select { |k, _| k == "authorization" || k.start_with?("x-") }
      Msg.new(text: md.sort.inspect, data: call.peer_cert.to_s.b)
    else Msg.new(text: "unknown command")
    end
  end

  def server_stream(req, call)
    pause = nil
    if (m = req.text.match(/\Asleep:([\d.]+):(.+)\z/))
      pause = Float(m[1])
      key = m[2]
      call.on_cancel { TestServicer.record(key, "ended") } if call.respond_to?(:on_cancel)
    end
    Enumerator.new do |y|
      finished = false
      req.n.times do |i|
        sleep pause if pause # the handler's "work" between messages
        break if call.cancelled?

        y << Msg.new(text: i.to_s, data: req.data)
      end
      finished = true
    ensure # the grpc gem tells a cancelled handler by raising out of `y <<`
      TestServicer.record(key, "ended") if key && !finished
    end
  end

  def client_stream(call)
    texts = []
    data = "".b
    call.each_remote_read do |m|
      texts << m.text
      data << m.data
    end
    Msg.new(text: texts.join(","), data: data, n: texts.size)
  end

  def bidi(requests, _call)
    requests.lazy.map { |m| Msg.new(text: m.text.upcase, data: m.data) }
  end
end
