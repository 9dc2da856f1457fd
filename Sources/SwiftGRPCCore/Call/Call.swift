/// One gRPC call on an HTTP/2 stream, either role: what `ServerCall` and `ClientCall` share.
/// The call's state machine (kept in its loop's registry, so hosts validate against it), its
/// message buffer in both directions, the host's sink and its token, the metadata limit, the
/// deadline timer, receive back-pressure, answering reads, and giving nghttp2 the outbound
/// DATA. The roles add what differs: the head they validate, the events they deliver, and how
/// the call ends. Loop-bound.
class Call {
  let loop: EventLoop
  /// The server's or channel's id: host operations on the token are checked against it.
  let owner: UInt64
  /// The method's kind, path and event sink (a server call learns them from its head).
  private(set) var kind: MethodKind
  private(set) var method: String
  private(set) var sink: EventSink
  /// Issued by the registry; 0 until then.
  var token: UInt64 = 0
  /// Client calls: the host's opaque tag, carried by every event.
  var tag: UInt = 0
  /// Server calls: the tag the host binds to the call (swiftgrpc_call_set_tag), any thread.
  let hostTag: HostTag?
  /// Read and written only under `loop.registry`'s lock (`validate`, `update`, `end`).
  var state: CallStateMachine
  var buffer: MessageBuffer
  /// The encoding the call's outbound messages are compressed in (the role chooses it before
  /// its headers go out, within what the peer accepts).
  var outboundEncoding = MessageEncoding.identity
  /// The connection and stream the call runs on (a client call gets them once it is started);
  /// released when the call ends.
  var connection: HTTP2Connection?
  var streamID: Int32 = 0
  var deadline = Time.never
  private var deadlineTimer: LoopTimer?
  /// nghttp2 asked for DATA and got none: the stream must be resumed when some is queued.
  private var dataDeferred = false
  // Metadata limit: the decoded size (RFC 7541 §4.1: name + value + 32) of the header block
  // being received.
  private let maxMetadataSize: Int
  private var headerBytes = 0
  /// The header block being received went over the limit; its remaining fields are dropped.
  private(set) var metadataTooLarge = false

  init(loop: EventLoop, role: CallStateMachine.Role, kind: MethodKind, owner: UInt64,
       sink: EventSink, method: String, maxReceiveMessageSize: Int, maxMetadataSize: Int) {
    self.loop = loop
    self.kind = kind
    self.owner = owner
    self.sink = sink
    self.method = method
    hostTag = role == .server ? HostTag() : nil
    state = CallStateMachine(role: role, kind: kind)
    buffer = MessageBuffer(maxReceiveMessageSize: maxReceiveMessageSize)
    self.maxMetadataSize = maxMetadataSize
  }

  var session: HTTP2Session? { connection?.session }

  /// A server call's method, once its head named a registered one (before it is registered).
  final func bind(method: String, kind: MethodKind, sink: EventSink) {
    self.method = method
    self.kind = kind
    self.sink = sink
    state = CallStateMachine(role: state.role, kind: kind)
  }

  // MARK: - State

  /// Runs a transition of the call's state machine, under the registry lock.
  @inline(__always)
  final func update<T>(_ body: (inout CallStateMachine) -> T) -> T {
    loop.registry.update(self, body)
  }

  /// The call is over for the host: its token is forgotten and its deadline timer cancelled.
  /// Returns what the host still waited for.
  final func endForHost() -> CallStateMachine.Ending {
    loop.cancel(deadlineTimer)
    deadlineTimer = nil
    return loop.registry.end(self)
  }

  /// Arms the deadline: when it passes, the call fails with DEADLINE_EXCEEDED, unless it ended
  /// first (ending cancels the timer).
  final func armDeadline() {
    guard deadline != Time.never else { return }
    // Strong: ending the call cancels the timer (a weak capture would put every call with a
    // deadline on the slow path of reference counting).
    deadlineTimer = loop.schedule(at: deadline) { [self] in
      self.deadlineTimer = nil
      self.fail(Status(.deadlineExceeded, "deadline exceeded"))
    }
  }

  /// Delivers an event about this call to the host. Returns false if the sink refused it.
  @discardableResult
  final func deliver(_ type: CallEventType, _ fill: (inout CallEvent) -> Void = { _ in }) -> Bool {
    var event = CallEvent(type: type, token: token, kind: kind, method: method)
    if let hostTag {
      event.tag = hostTag.load()
      event.hostTag = hostTag
    } else {
      event.tag = tag
    }
    fill(&event)
    return sink.deliver(event, on: loop)
  }

  /// Delivers an event; if the sink no longer takes events (its queue was shut down) the call
  /// ends, later on the loop (this may run inside an nghttp2 callback).
  final func deliverOrEnd(_ type: CallEventType, _ fill: (inout CallEvent) -> Void = { _ in }) {
    if deliver(type, fill) { return }
    loop.execute { [self] in fail(Status(.cancelled, "the event queue was shut down")) }
  }

  // MARK: - Headers (both roles receive one or two header blocks)

  /// A header block begins: the head, or (`trailers`) the trailers or a trailers-only
  /// response.
  final func headerBlockBegins(trailers: Bool) {
    headerBytes = 0
    metadataTooLarge = false
    headerBlockStarted(trailers: trailers)
  }

  /// One header field; counted against the metadata limit, then handed to the role.
  final func receivedHeader(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
    if metadataTooLarge { return }
    headerBytes += name.count + value.count + 32
    if headerBytes > maxMetadataSize {
      metadataTooLarge = true
      return
    }
    header(name: name, value: value)
  }

  /// Status for a header block over the metadata limit.
  final var metadataLimitStatus: Status {
    Status(
      .resourceExhausted,
      "received metadata of at least \(headerBytes) bytes exceeds the limit of \(maxMetadataSize)")
  }

  // MARK: - Inbound messages

  /// A chunk of the peer's DATA: reassembled into messages; credit is given back unless a
  /// complete message waits for the host (back-pressure).
  final func receivedData(_ chunk: UnsafeRawBufferPointer) {
    guard acceptsData else {
      connection?.consume(streamID: streamID, bytes: chunk.count)
      return
    }
    do throws(MessageDeframer.Failure) {
      let credit = try buffer.receive(chunk, inflatingWith: loop.zlib)
      connection?.consume(streamID: streamID, bytes: credit)
    } catch {
      connection?.consume(streamID: streamID, bytes: buffer.dropReceived())
      fail(error.status)
      return
    }
    messagesArrived()
  }

  /// Takes the next received message (and whether it came compressed), returning its credit to
  /// the peer.
  final func takeMessage() -> (bytes: [UInt8], compressed: Bool)? {
    guard let (message, compressed, credit) = buffer.nextMessage() else { return nil }
    if credit > 0, let connection {
      connection.consume(streamID: streamID, bytes: credit)
      loop.markDirty(connection)
    }
    return (message, compressed)
  }

  /// Answers the host's outstanding reads, oldest first: with the messages received, then with
  /// the end of the peer's message stream once it has ended and every message was read.
  final func serviceRead() {
    while buffer.hasMessage {
      guard update({ $0.readAnswered(endOfStream: false) }), let message = takeMessage() else {
        return
      }
      deliverMessage(message.bytes, compressed: message.compressed)
    }
    if peerMessagesEnded {
      guard update({ $0.readAnswered(endOfStream: true) }) else { return }
      deliverEndOfMessages()
    }
  }

  // MARK: - Outbound messages

  /// Queues a message for the peer (`completesSend`: it answers the host's send), compressed in
  /// `outboundEncoding` unless `compress` is false or compressing would not make it smaller (as
  /// gRPC C-core does: such a message goes uncompressed, its flag 0). Loop thread: the loop's
  /// zlib streams do the work.
  final func enqueue(_ message: [UInt8], completesSend: Bool, compress: Bool = true) {
    if compress, outboundEncoding != .identity, !message.isEmpty {
      loop.compressionBudget -= message.count  // the drain yields to the sockets when spent
      if let packed = message.withUnsafeBytes({ loop.zlib.compress($0, outboundEncoding) }),
        packed.count < message.count
      {
        buffer.enqueue(packed, compressed: true, completesSend: completesSend)
        return
      }
    }
    buffer.enqueue(message, completesSend: completesSend)
  }

  /// Lets nghttp2 pull again after the data source deferred.
  final func resumeOutbound() {
    guard let connection, let session = connection.session else { return }
    if dataDeferred {
      dataDeferred = false
      session.resumeData(streamID: streamID)
    }
    loop.markDirty(connection)
  }

  /// nghttp2 pulls outbound DATA (inside the session's output): queued message bytes, then the
  /// end the role gives (END_STREAM, or trailers).
  final func readData(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> DataRead {
    let (n, sendsDone) = self.buffer.read(into: buffer, length: length)
    for _ in 0..<sendsDone where update({ $0.sendCompleted() }) { deliverSendDone() }
    if !self.buffer.hasOutbound, let end = outboundEnd() { return .bytes(n, end: end) }
    if n > 0 { return .bytes(n, end: .none) }
    dataDeferred = true
    return .deferred
  }

  /// The call leaves its stream for a new one (a transparent retry): what the old stream left
  /// in the buffers goes (its credit with it: the stream is closed).
  final func leaveStream() {
    _ = buffer.dropReceived()
    buffer.dropOutbound()
    buffer.inboundEncoding = .identity
    dataDeferred = false
    connection = nil
    streamID = 0
  }

  /// Drops everything still buffered in both directions (the call ended), returning held credit.
  final func dropBuffers() {
    connection?.consume(streamID: streamID, bytes: buffer.dropReceived())
    buffer.dropOutbound()
  }

  // MARK: - Role hooks

  /// A host operation, validated on the host's thread, now applied on the loop.
  func apply(_ op: CallOp) {}
  func headerBlockStarted(trailers: Bool) {}
  /// A header field of the current block (within the metadata limit).
  func header(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {}
  /// A header block ended; `endStream`: it carried END_STREAM.
  func headersEnded(endStream: Bool) {}
  /// The peer's END_STREAM.
  func peerEnded() {}
  /// The stream closed (after both ends, or reset by either side).
  func streamClosed(errorCode: UInt32) {}
  /// Whether DATA is taken now (else it is discarded, its credit returned).
  var acceptsData: Bool { false }
  /// New messages are in the buffer.
  func messagesArrived() {}
  /// Whether the peer's messages are over (then a read is answered with the end).
  var peerMessagesEnded: Bool { false }
  func deliverMessage(_ message: [UInt8], compressed: Bool) {}
  func deliverEndOfMessages() {}
  func deliverSendDone() {}
  /// How the DATA ends once the buffer is empty, or nil if more may come.
  func outboundEnd() -> DataEnd? { nil }
  /// Ends the call from the library's side with `status` (malformed input, deadline, limits).
  func fail(_ status: Status) {}
}

/// The sink of a server call whose method is not known yet: it never delivers.
final class NoSink: EventSink {
  static let shared = NoSink()
  func deliver(_ event: CallEvent) -> Bool { false }
}
