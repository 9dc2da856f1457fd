/// The server role of a call: validates the request head, finds the method, starts the host's
/// call (the CALL event, once a unary request has arrived whole), applies the host's answers,
/// and ends the response with trailers (or trailers-only). Loop-bound.
final class ServerCall: Call {
  private enum Phase {
    /// Receiving the request head.
    case head
    /// Unary-request kinds: collecting the one message and the half-close.
    case awaitingRequest
    /// The host was sent CALL; the token is open.
    case active
    /// Over for the host (completed, cancelled, or rejected); the response may still be going.
    case done
  }

  private let server: Server
  private let peer: String
  private let auth: [MetadataEntry]
  private var phase = Phase.head
  private var head = RequestHead()
  /// Unary-request kinds: the request message, and how many arrived.
  private var request: (bytes: [UInt8], compressed: Bool)?
  private var requestMessages = 0
  private var initialMetadata: [MetadataEntry] = []
  /// Trailers to submit once the queued messages are out.
  private var pendingTrailers: HeaderBlock?
  /// The encodings the client accepts (its grpc-accept-encoding; identity only without one).
  private var clientAccepts = AcceptedEncodings.identityOnly
  /// Holds one of the server's `maxConcurrentCalls` places (given back when it ends for the host).
  private var admitted = false

  init(streamID: Int32, connection: ServerConnection) {
    server = connection.server
    peer = connection.peer
    auth = connection.auth
    let config = server.config
    super.init(
      loop: connection.loop, role: .server, kind: .unary, owner: server.id, sink: NoSink.shared,
      method: "", maxReceiveMessageSize: config.maxReceiveMessageSize,
      maxMetadataSize: config.maxMetadataSize)
    self.connection = connection
    self.streamID = streamID
  }

  /// Whether the client's END_STREAM arrived.
  var requestHasEnded: Bool { update { $0.client == .closed } }

  // MARK: - Request head

  override func header(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
    guard phase == .head else { return }  // trailers from a client: not part of gRPC, ignored
    head.add(name: name, value: value)
  }

  override func headersEnded(endStream: Bool) {
    guard phase == .head else { return }
    phase = .done  // until accepted
    if metadataTooLarge {
      endResponse(metadataLimitStatus)
      return
    }
    let timeout: Int64?
    switch head.validate() {
    case .failure(.http(let code, let status)):
      respondHTTP(code, status)
      return
    case .failure(.grpc(let status, let reserved)):
      endResponse(status, reservedTrailers: reserved)
      return
    case .success(let t):
      timeout = t
    }
    guard let registration = server.methods[head.path] else {
      endResponse(Status(.unimplemented, "Method not found: \(head.path)"))
      return
    }
    if server.config.maxConcurrentCalls > 0 {
      guard server.admitCall() else {  // as grpcio answers, before the request is read
        endResponse(Status(.resourceExhausted, "Concurrent RPC limit exceeded!"))
        return
      }
      admitted = true
    }
    bind(method: registration.path, kind: registration.kind, sink: registration.sink)
    buffer.inboundEncoding = head.messageEncoding
    clientAccepts = head.acceptedEncodings
    outboundEncoding = clientAccepts.choose(server.config.defaultCompression)
    update { $0.requestOpened() }
    if let timeout {
      deadline = Time.deadline(after: timeout)
      armDeadline()
    }
    if kind.clientStreams {
      activate(message: nil)
    } else {
      phase = .awaitingRequest
    }
  }

  /// Registers the call (issuing its token) and sends the host the CALL event.
  private func activate(message: (bytes: [UInt8], compressed: Bool)?) {
    loop.registry.register(self)
    phase = .active
    let delivered = deliver(.call) { [head, peer, auth, deadline] e in
      e.authority = head.authority
      e.peer = peer
      e.auth = auth
      e.metadata = head.metadata
      e.deadline = deadline
      e.message = message?.bytes
      e.messageCompressed = message?.compressed ?? false
    }
    head = RequestHead()
    if !delivered { fail(Status(.unavailable, "the server's event queue is shut down")) }
  }

  // MARK: - Request body

  override var acceptsData: Bool { phase == .awaitingRequest || phase == .active }

  override func messagesArrived() {
    if kind.clientStreams {
      serviceRead()
      return
    }
    while let message = takeMessage() {
      requestMessages += 1
      if requestMessages > 1 {
        fail(Status(.internalError, "a \(kind) request must carry exactly one message, got more"))
        return
      }
      request = message
    }
  }

  override func peerEnded() {
    update { $0.requestEnded() }
    switch phase {
    case .awaitingRequest:
      if buffer.hasPartialMessage {
        fail(Status(.internalError, "request ended inside a message"))
      } else if let request {
        self.request = nil
        activate(message: request)
      } else {
        fail(Status(.internalError, "a \(kind) request must carry exactly one message, got none"))
      }
    case .active:
      if buffer.hasPartialMessage {
        fail(Status(.internalError, "request ended inside a message"))
      } else {
        serviceRead()
      }
    case .head, .done:
      break
    }
  }

  override var peerMessagesEnded: Bool { !buffer.hasPartialMessage && requestHasEnded }

  override func deliverMessage(_ message: [UInt8], compressed: Bool) {
    deliverOrEnd(.message) {
      $0.message = message
      $0.messageCompressed = compressed
    }
  }

  override func deliverEndOfMessages() {
    deliverOrEnd(.halfClose)
  }

  override func deliverSendDone() {
    deliverOrEnd(.sendDone)
  }

  // MARK: - Host answers (on the loop)

  override func apply(_ op: CallOp) {
    guard phase == .active else { return }
    switch op {
    case .initialMetadata(let md):
      initialMetadata = md
      if update({ $0.openResponse() }) { submitHeaders() }
    case .send(let message, let compress):
      enqueue(message, completesSend: true, compress: compress)
      if update({ $0.openResponse() }) { submitHeaders() } else { resumeOutbound() }
    case .setCompression(let encoding):
      outboundEncoding = clientAccepts.choose(encoding)
    case .read:
      serviceRead()
    case .complete(let message, let status, let trailers):
      if let message { enqueue(message, completesSend: false) }
      phase = .done
      _ = endedForHost()  // completed: the host is owed no event
      endResponse(status, trailers: trailers, withMessage: message != nil)
    case .halfClose, .cancel:
      break
    }
  }

  // MARK: - Ending

  /// Ends the call from the library's side (malformed request, deadline, limits, shutdown): the
  /// host is told if it still held the token, and the client receives `status`.
  override func fail(_ status: Status) {
    let wasActive = phase == .active
    phase = .done
    let ending = endedForHost()
    if wasActive && ending.cancelHost { tellHostCancelled(status.code) }
    dropBuffers()
    endResponse(status)
  }

  /// The stream closed: after the response, or reset by the client.
  override func streamClosed(errorCode: UInt32) {
    closed(monotonicNanos() >= deadline ? .deadlineExceeded : .cancelled)
  }

  /// The connection went away with the call open.
  func connectionLost(_ reason: Status) {
    closed(reason.code)
  }

  private func closed(_ code: StatusCode) {
    let wasActive = phase == .active
    phase = .done
    let ending = endedForHost()
    if wasActive && ending.cancelHost { tellHostCancelled(code) }
    buffer.dropOutbound()
    connection = nil
  }

  /// Ends the call for its host (`Call.endForHost`) and gives back its place under the server's
  /// concurrent-call limit.
  private func endedForHost() -> CallStateMachine.Ending {
    if admitted {
      admitted = false
      server.releaseCall()
    }
    return endForHost()
  }

  /// CANCELLED for the host, unless its CALL event can still be taken back (a pull queue the
  /// host has not read yet): then the host never sees the call at all.
  private func tellHostCancelled(_ code: StatusCode) {
    if sink.retract(token: token) { return }
    deliver(.cancelled) { $0.status = Status(code) }
  }

  // MARK: - Response

  private func submitHeaders() {
    guard let session else { return }
    var block = HeaderBlock.responseHeaders(outboundEncoding)
    if !initialMetadata.isEmpty {
      block = HeaderBlock()
      block.add(":status", "200")
      block.add("content-type", "application/grpc")
      block.add("grpc-accept-encoding", MessageEncoding.acceptValue)
      if outboundEncoding != .identity { block.add("grpc-encoding", outboundEncoding.headerValue) }
      block.add(metadata: initialMetadata)
    }
    session.submitResponse(streamID: streamID, headers: block, body: true)
    if let connection { loop.markDirty(connection) }
  }

  /// Ends the response with `status`: trailers after the messages, or trailers-only when nothing
  /// went out.
  private func endResponse(
    _ status: Status, trailers: [MetadataEntry] = [], reservedTrailers: [MetadataEntry] = [],
    withMessage: Bool = false
  ) {
    let end = update { $0.endResponse(withMessage: withMessage) }
    guard let session else { return }
    switch end {
    case .none:
      return
    case .trailersOnly:
      var block = HeaderBlock()
      block.add(":status", "200")
      block.add("content-type", "application/grpc")
      block.add(status: status)
      for t in reservedTrailers { block.add(t.key.utf8, t.value) }
      block.add(metadata: trailers)
      session.submitResponse(streamID: streamID, headers: block, body: false)
    case .trailers(let headersToo):
      if status.code == .ok && status.message.isEmpty && trailers.isEmpty && reservedTrailers.isEmpty {
        pendingTrailers = .okTrailers
      } else {
        var block = HeaderBlock()
        block.add(status: status)
        for t in reservedTrailers { block.add(t.key.utf8, t.value) }
        block.add(metadata: trailers)
        pendingTrailers = block
      }
      if headersToo { submitHeaders() } else { resumeOutbound() }
    }
    if let connection { loop.markDirty(connection) }
  }

  /// Not a gRPC request: an HTTP error status with the gRPC status, no body.
  private func respondHTTP(_ httpStatus: StaticString, _ status: Status) {
    _ = update { $0.endResponse(withMessage: false) }
    guard let session else { return }
    var block = HeaderBlock()
    block.add(":status", httpStatus)
    block.add(status: status)
    session.submitResponse(streamID: streamID, headers: block, body: false)
    if let connection { loop.markDirty(connection) }
  }

  override func outboundEnd() -> DataEnd? {
    guard let trailers = pendingTrailers else { return nil }
    pendingTrailers = nil
    session?.submitTrailers(streamID: streamID, headers: trailers)
    return .trailers
  }
}
