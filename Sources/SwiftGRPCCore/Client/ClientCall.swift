/// The client role of a call: waits for a connection, sends the request head and messages,
/// validates the response head and trailers, and reports to the host through its sink — every
/// operation answered by exactly one event, STATUS always last. Loop-bound (the channel's loop).
final class ClientCall: Call {
  enum Phase {
    /// Started, not yet on a stream (no ready connection yet).
    case pending
    /// On a stream.
    case open
    /// The final status was delivered (or is being delivered).
    case done
  }

  let channel: Channel
  let metadata: [MetadataEntry]
  let waitForReady: Bool
  /// The call's own call credentials (the channel's are added at start).
  private let credentials: CallCredentials?
  /// Metadata the call credentials gave, and the plugin requests still unanswered.
  private var credentialMetadata: [MetadataEntry] = []
  private var credentialRequests: Set<UInt64> = []
  private(set) var phase = Phase.pending
  /// The host half-closed (applied on the loop; unary-request kinds from the start).
  private var halfClosed: Bool
  private var streamClosedByPeer = false
  private var response = ResponseHead()
  /// Whether the header block being received is the trailers (or a trailers-only response).
  private var inTrailers = false
  /// Unary-request kinds: the request, queued (and compressed) on the loop when the call begins.
  private var request: [UInt8]?
  /// The encoding asked for (the call's or the channel's default).
  private let requestedEncoding: MessageEncoding
  /// Unary-request kinds: the request again, until the server answers, for a transparent retry.
  private var retryRequest: [UInt8]?
  private var transparentRetries = 0
  /// Refused streams a call goes again after, at most.
  static let maxTransparentRetries = 5
  /// Unary-response kinds: the response and how many arrived.
  private var unaryResponse: (bytes: [UInt8], compressed: Bool)?
  private var responseCount = 0
  /// The server's status; for streaming responses delivered once a read finds the end.
  private var remoteStatus: Status?

  init(channel: Channel, start: CallStart, deadline: Int64) {
    self.channel = channel
    metadata = start.metadata
    waitForReady = start.waitForReady
    credentials = start.credentials
    halfClosed = !start.kind.clientStreams
    requestedEncoding = start.compression ?? channel.config.defaultCompression
    super.init(
      loop: channel.loop, role: .client, kind: start.kind, owner: channel.id, sink: start.sink,
      method: start.method, maxReceiveMessageSize: channel.config.maxReceiveMessageSize,
      maxMetadataSize: channel.config.maxMetadataSize)
    self.deadline = deadline
    tag = start.tag
    request = start.message
  }

  // MARK: - Lifecycle

  /// First step on the loop: arm the deadline (or end at once if it has passed) and gather the
  /// call credentials' metadata. Returns whether the call can go on a stream now; if plugins
  /// must answer first, the call goes on (`channel.proceed`) once they have.
  func begin() -> Bool {
    outboundEncoding = channel.serverAccepts?.choose(requestedEncoding) ?? requestedEncoding
    if let request {
      self.request = nil
      retryRequest = request  // shares the bytes: no copy
      enqueue(request, completesSend: false)
    }
    if deadline != Time.never && deadline <= monotonicNanos() {
      finish(Status(.deadlineExceeded, "deadline exceeded before the call started"), resetStream: false)
      return false
    }
    armDeadline()
    let sources = (channel.config.credentials?.callCredentials?.sources ?? []) + (credentials?.sources ?? [])
    if sources.isEmpty { return true }
    if channel.config.credentials == nil {
      finish(Status(.unauthenticated,
                    "Established channel does not have a sufficient security level to transfer call credential."),
             resetStream: false)
      return false
    }
    let service = method.split(separator: "/").first.map(String.init) ?? ""
    let name = method.split(separator: "/").last.map(String.init) ?? ""
    let serviceURL = "https://\(channel.authority)/\(service)"
    for source in sources {
      switch source {
      case .metadata(let md):
        credentialMetadata += md
      case .plugin(let sink, let pluginTag):
        let id = CredentialRequests.begin(self)
        credentialRequests.insert(id)
        var event = CallEvent(type: .credentialsRequest, token: id, kind: kind, method: name)
        event.authority = serviceURL
        event.tag = pluginTag
        if !sink.deliver(event) {
          finish(Status(.unavailable, "Getting metadata from plugin failed with error: its queue is shut down"),
                 resetStream: false)
          return false
        }
      }
    }
    if credentialRequests.isEmpty { return true }
    channel.awaitingCredentials[ObjectIdentifier(self)] = self
    return false
  }

  /// A plugin answered (loop thread).
  func credentialsAnswered(request: UInt64, metadata: [MetadataEntry], failure: String?) {
    guard phase == .pending, credentialRequests.remove(request) != nil else { return }
    if let failure {
      finish(Status(.unavailable, "Getting metadata from plugin failed with error: \(failure)"), resetStream: false)
      return
    }
    credentialMetadata += metadata
    if credentialRequests.isEmpty {
      channel.awaitingCredentials[ObjectIdentifier(self)] = nil
      channel.proceed(self)
    }
  }

  /// The call is on `streamID` of `connection`.
  func opened(on connection: ClientConnection, streamID: Int32) {
    self.connection = connection
    self.streamID = streamID
    phase = .open
    update { $0.requestOpened() }
  }

  override func fail(_ status: Status) {
    finish(status, resetStream: true)
  }

  /// Ends the call locally (cancel, deadline, connection loss, bad response, channel destroy):
  /// resets the stream if asked, drops unread messages and delivers the status.
  func finish(_ status: Status, resetStream: Bool) {
    guard phase != .done else { return }
    if phase == .pending { channel.removePending(self) }
    for id in credentialRequests { CredentialRequests.cancel(id) }
    credentialRequests.removeAll()
    channel.awaitingCredentials[ObjectIdentifier(self)] = nil
    if phase == .open, resetStream, !streamClosedByPeer, let session, let connection {
      session.resetStream(streamID, .cancel)
      loop.markDirty(connection)
    }
    dropBuffers()
    deliverFinal(status)
  }

  /// The last events: those the host still waits for, then STATUS.
  private func deliverFinal(_ status: Status) {
    phase = .done
    let ending = endForHost()
    for _ in 0..<ending.sendsOutstanding { deliver(.clientSendDone) { $0.status = status } }
    for _ in 0..<ending.readsOutstanding { deliver(.clientMessage) }
    var final = status
    var message: (bytes: [UInt8], compressed: Bool)? = nil
    if !kind.serverStreams, status.code == .ok {
      if responseCount == 1 {
        message = unaryResponse
      } else {
        final = Status(
          .internalError,
          responseCount == 0
            ? "the server sent no response message for a \(kind) call"
            : "the server sent \(responseCount) response messages for a \(kind) call")
      }
    }
    deliver(.clientStatus) { [response] e in
      e.status = final
      e.message = message?.bytes
      e.messageCompressed = message?.compressed ?? false
      e.metadata = response.initialMetadata
      e.trailers = response.trailers
    }
    unaryResponse = nil
    connection = nil
    channel.callEnded(self)
  }

  // MARK: - Host operations (on the loop)

  override func apply(_ op: CallOp) {
    guard phase != .done else { return }
    switch op {
    case .send(let m, let compress):
      enqueue(m, completesSend: true, compress: compress)
      if phase == .open { resumeOutbound() }
    case .halfClose:
      halfClosed = true
      if phase == .open { resumeOutbound() }
    case .read:
      if phase == .open { serviceRead() }
    case .cancel:
      finish(Status(.cancelled, "cancelled by the client"), resetStream: true)
    case .initialMetadata, .complete, .setCompression:
      break
    }
  }

  // MARK: - Request

  func requestHeaders() -> HeaderBlock {
    var block = HeaderBlock()
    block.add(":method", "POST")
    if channel.config.credentials == nil { block.add(":scheme", "http") } else { block.add(":scheme", "https") }
    block.add(":path", method.utf8)
    block.add(":authority", channel.authority.utf8)
    block.add("content-type", "application/grpc")
    block.add("te", "trailers")
    block.add("grpc-accept-encoding", MessageEncoding.acceptValue)
    if outboundEncoding != .identity { block.add("grpc-encoding", outboundEncoding.headerValue) }
    block.add("user-agent", channel.config.userAgent.utf8)
    if deadline != Time.never {
      block.add("grpc-timeout", GRPCTimeout.encode(nanoseconds: max(1, deadline - monotonicNanos())).utf8)
    }
    block.add(metadata: metadata)
    block.add(metadata: credentialMetadata)
    return block
  }

  override func outboundEnd() -> DataEnd? {
    guard halfClosed else { return nil }
    update { $0.requestEnded() }
    return .endStream
  }

  override func deliverSendDone() {
    deliverOrEnd(.clientSendDone)
  }

  // MARK: - Response

  override func headerBlockStarted(trailers: Bool) {
    inTrailers = trailers
  }

  override func header(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
    guard phase == .open else { return }
    response.add(name: name, value: value, trailer: inTrailers)
  }

  override func headersEnded(endStream: Bool) {
    guard phase == .open else { return }
    if metadataTooLarge {
      fail(metadataLimitStatus)
      return
    }
    retryRequest = nil  // the server took the call
    let block = update { $0.responseHeadersReceived(endsStream: endStream) }
    if block != .trailers, let accepts = response.acceptedEncodings { channel.serverAccepts = accepts }
    if block != .trailers, let bad = response.validateHead() {
      fail(bad)
      return
    }
    switch block {
    case .head:
      buffer.inboundEncoding = response.messageEncoding
      if kind.serverStreams {
        deliverOrEnd(.clientInitialMetadata) { [response] in $0.metadata = response.initialMetadata }
      }
      return
    case .trailers where buffer.hasPartialMessage:
      fail(Status(.internalError, "the response ended inside a message"))
      return
    case .trailers, .trailersOnly:
      switch response.status() {
      case .success(let status):
        remoteStatus = status
        if block == .trailersOnly, status.code == .unimplemented, outboundEncoding != .identity,
          response.acceptedEncodings == nil
        {
          // Refused, perhaps for the encoding, by a server that did not say what it accepts
          // (grpcio does so): later calls go uncompressed rather than fail the same way.
          channel.serverAccepts = (channel.serverAccepts ?? .all).removing(outboundEncoding)
        }
      case .failure(let failure): fail(failure.status)
      }
    }
  }

  override var acceptsData: Bool { phase == .open }

  override func messagesArrived() {
    if kind.serverStreams {
      serviceRead()
      return
    }
    while let message = takeMessage() {
      responseCount += 1
      if responseCount == 1 { unaryResponse = message }
    }
  }

  override var peerMessagesEnded: Bool { streamClosedByPeer && remoteStatus != nil }

  override func deliverMessage(_ message: [UInt8], compressed: Bool) {
    deliverOrEnd(.clientMessage) {
      $0.message = message
      $0.messageCompressed = compressed
    }
  }

  /// A streaming response ends with a read answered "end of stream", then the status.
  override func deliverEndOfMessages() {
    deliverOrEnd(.clientMessage)
    if phase == .open, let remoteStatus { deliverFinal(remoteStatus) }
  }

  /// The stream closed: after the trailers, or reset.
  override func streamClosed(errorCode: UInt32) {
    streamClosedByPeer = true
    guard phase == .open else { return }
    if remoteStatus == nil, errorCode == HTTP2Session.ErrorCode.refusedStream.rawValue,
      retryTransparently()
    {
      return
    }
    guard let status = remoteStatus else {
      finish(ClientCall.resetStatus(errorCode), resetStream: false)
      return
    }
    if kind.serverStreams { serviceRead() } else { deliverFinal(status) }
  }

  /// The server refused the stream before processing it (REFUSED_STREAM: it was above a GOAWAY's
  /// last stream id, or over the server's stream limit): a unary-request call goes again on
  /// another connection, as gRFC A6's transparent retry; nothing of it reached the host yet.
  /// Returns false when it cannot (a streaming request, or refused too often).
  private func retryTransparently() -> Bool {
    guard let retryRequest, transparentRetries < ClientCall.maxTransparentRetries else { return false }
    transparentRetries += 1
    leaveStream()
    phase = .pending
    streamClosedByPeer = false
    response = ResponseHead()
    inTrailers = false
    update { $0.streamRetried() }
    enqueue(retryRequest, completesSend: false)
    // Outside this nghttp2 callback: the old connection's session is still in it.
    loop.execute { [self] in channel.proceed(self) }
    return true
  }

  /// The status of a stream the server reset (or ended) without one.
  static func resetStatus(_ errorCode: UInt32) -> Status {
    switch HTTP2Session.ErrorCode(rawValue: errorCode) {
    case .refusedStream:
      return Status(.unavailable, "the server did not process the call (stream refused)")
    case .cancel:
      return Status(.cancelled, "the server cancelled the stream")
    case .enhanceYourCalm:
      return Status(.resourceExhausted, "the server reset the stream: ENHANCE_YOUR_CALM")
    case .noError:
      return Status(.internalError, "the stream ended without a status")
    default:
      return Status(.internalError, "the server reset the stream: \(HTTP2Session.describeHTTP2Error(errorCode))")
    }
  }
}
