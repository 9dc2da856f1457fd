import CNGHTTP2
import Glibc

/// One client call: waits for a connection, runs on one HTTP/2 stream, and reports to the host
/// through its sink. Loop-bound (the channel's loop).
final class ClientCall {
  enum Phase {
    /// Started, not yet on a stream (no ready connection yet).
    case pending
    /// On a stream.
    case open
    /// The final status was delivered (or is being delivered).
    case done
  }

  let channel: Channel
  let kind: MethodKind
  let method: String
  let metadata: [MetadataEntry]
  let deadline: Int64
  let waitForReady: Bool
  let sink: ClientSink
  let tag: UInt
  var id: UInt64 = 0
  private(set) var phase = Phase.pending
  private var connection: ClientConnection?
  private var streamID: Int32 = 0
  private var streamClosedByPeer = false

  // Request side.
  private var out: [UInt8] = []
  private var outOffset = 0
  /// Total request bytes queued and taken by nghttp2; a send is done when `taken` reaches its end.
  private var queued = 0
  private var taken = 0
  private var sendEndsAt: Int?
  private var halfClosed = false
  private var dataDeferred = false

  // Response side.
  private var httpStatus = 0
  private var contentTypeOK = false
  private var encoding: [UInt8]?
  private var headerError: String?
  private var initialMetadata: [MetadataEntry] = []
  private var trailers: [MetadataEntry] = []
  private var grpcStatus: Int32?
  private var grpcMessage = ""
  private var headersSeen = false
  private var deframer: MessageDeframer
  private var messages: [[UInt8]] = []
  private var messagesHead = 0
  private var response: [UInt8]?
  private var responseCount = 0
  private var readWanted = false
  private var heldBytes = 0
  /// The status the server gave; for streaming responses delivered once a read finds the end.
  private var remoteStatus: Status?

  init(channel: Channel, start: CallStart, deadline: Int64) {
    self.channel = channel
    kind = start.kind
    method = start.method
    metadata = start.metadata
    self.deadline = deadline
    waitForReady = start.waitForReady
    sink = start.sink
    tag = start.tag
    deframer = MessageDeframer(maxMessageSize: channel.config.maxReceiveMessageSize)
    if let m = start.message {
      m.withUnsafeBytes { MessageFramer.appendFramed($0, to: &out) }
      queued = out.count
      halfClosed = true
    }
  }

  private var loop: EventLoop { channel.loop }

  // MARK: - Lifecycle

  /// First step on the loop: arm the deadline.
  func armDeadline() {
    guard deadline != Int64.max else { return }
    if deadline <= monotonicNanos() {
      finish(Status(.deadlineExceeded, "deadline exceeded before the call started"), resetStream: false)
      return
    }
    loop.schedule(at: deadline) { [weak self] in
      guard let self, self.phase != .done else { return }
      self.finish(Status(.deadlineExceeded, "deadline exceeded"), resetStream: true)
    }
  }

  func opened(on connection: ClientConnection, streamID: Int32) {
    self.connection = connection
    self.streamID = streamID
    phase = .open
  }

  /// Ends the call locally (cancel, deadline, connection loss, bad response, channel destroy):
  /// resets the stream if asked, drops unread messages and delivers the status.
  func finish(_ status: Status, resetStream: Bool) {
    guard phase != .done else { return }
    if phase == .pending { channel.removePending(self) }
    if phase == .open, resetStream, !streamClosedByPeer, let connection {
      connection.resetStream(streamID)
    }
    messages.removeAll()
    messagesHead = 0
    deliverFinal(status)
  }

  private func deliverFinal(_ status: Status) {
    phase = .done
    let (sendOutstanding, readOutstanding) = loop.endClientCall(id)
    if sendOutstanding { deliver(.sendDone, status: status) }
    if readOutstanding { deliver(.message) }
    var final = status
    var message: [UInt8]? = nil
    if !kind.serverStreams, status.code == .ok {
      if responseCount == 1 {
        message = response
      } else {
        final = Status(
          .internalError,
          responseCount == 0
            ? "the server sent no response message for a \(kind) call"
            : "the server sent \(responseCount) response messages for a \(kind) call")
      }
    }
    deliver(.status, status: final, message: message, trailers: trailers)
    response = nil
    channel.callEnded(self)
  }

  private func deliver(
    _ type: ClientEventType, status: Status = Status(.ok), message: [UInt8]? = nil,
    trailers: [MetadataEntry] = []
  ) {
    let event = ClientEvent(
      type: type, call: id, channelID: channel.id, kind: kind, tag: tag,
      metadata: type == .status || type == .initialMetadata ? initialMetadata : [],
      message: message, status: status, trailers: trailers)
    if !sink.deliver(event) && phase != .done {
      // The host's queue is shut down: nobody will read this call's events.
      loop.execute { [weak self] in
        self?.finish(Status(.cancelled, "the event queue was shut down"), resetStream: true)
      }
    }
  }

  // MARK: - Host operations (on the loop)

  func apply(_ op: ClientOp) {
    guard phase != .done else { return }
    switch op {
    case .send(let m):
      m.withUnsafeBytes { MessageFramer.appendFramed($0, to: &out) }
      queued += m.count + 5
      sendEndsAt = queued
      resumeIfDeferred()
    case .halfClose:
      halfClosed = true
      resumeIfDeferred()
    case .read:
      readWanted = true
      serviceRead()
    case .cancel:
      finish(Status(.cancelled, "cancelled by the client"), resetStream: true)
    }
  }

  private func resumeIfDeferred() {
    if phase == .open, dataDeferred, let connection {
      dataDeferred = false
      connection.resumeData(streamID)
    }
  }

  // MARK: - Request

  func requestHeaders() -> HeaderBlock {
    var block = HeaderBlock()
    block.add(":method", "POST")
    block.add(":scheme", "http")
    block.add(":path", method.utf8)
    block.add(":authority", channel.authority.utf8)
    block.add("content-type", "application/grpc")
    block.add("te", "trailers")
    block.add("user-agent", channel.config.userAgent.utf8)
    if deadline != Int64.max {
      block.add("grpc-timeout", GRPCTimeout.encode(nanoseconds: max(1, deadline - monotonicNanos())).utf8)
    }
    block.add(metadata: metadata)
    return block
  }

  /// nghttp2 pulls request DATA (inside `mem_send`).
  func readRequest(
    into buf: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>
  ) -> Int {
    let available = out.count - outOffset
    let n = min(length, available)
    if n > 0 {
      out.withUnsafeBytes { raw in
        UnsafeMutableRawPointer(buf).copyMemory(from: raw.baseAddress! + outOffset, byteCount: n)
      }
      outOffset += n
      taken += n
      if outOffset == out.count {
        out.removeAll(keepingCapacity: out.capacity <= 65536)
        outOffset = 0
      }
      if let end = sendEndsAt, taken >= end, phase != .done {
        sendEndsAt = nil
        loop.clientSendDelivered(id)
        deliver(.sendDone)
      }
    }
    if outOffset == out.count && halfClosed {
      flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
      return n
    }
    if n > 0 { return n }
    dataDeferred = true
    return Int(NGHTTP2_ERR_DEFERRED.rawValue)
  }

  // MARK: - Response

  func receivedHeader(
    name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, trailer: Bool
  ) {
    guard phase == .open else { return }
    if name.first == UInt8(ascii: ":") {
      if name.equals(":status") { httpStatus = Int(String(decoding: value, as: UTF8.self)) ?? 0 }
      return
    }
    if name.equals("content-type") {
      let prefix = "application/grpc".utf8
      contentTypeOK =
        value.starts(with: prefix)
        && (value.count == prefix.count || value[prefix.count] == UInt8(ascii: "+")
          || value[prefix.count] == UInt8(ascii: ";"))
    } else if name.equals("grpc-status") {
      grpcStatus = Int32(String(decoding: value, as: UTF8.self)) ?? -1
    } else if name.equals("grpc-message") {
      grpcMessage = PercentEncoding.decode(value)
    } else if name.equals("grpc-encoding") {
      encoding = Array(value)
    } else if MetadataValidation.isReserved(name) {
      return
    } else {
      let key = String(decoding: name, as: UTF8.self)
      guard let entries = MetadataEntry.fromWire(key: key, value: value) else {
        headerError = "response metadata '\(key)' is not valid base64"
        return
      }
      if trailer { trailers += entries } else { initialMetadata += entries }
    }
  }

  func headersComplete(trailer: Bool) {
    guard phase == .open else { return }
    if !headersSeen && httpStatus != 200 {
      finish(
        Status(httpStatusCode(httpStatus), "HTTP status \(httpStatus) from the server"),
        resetStream: true)
      return
    }
    if !trailer {
      headersSeen = true
      if !contentTypeOK {
        finish(Status(.unknown, "the response content-type is not application/grpc"), resetStream: true)
        return
      }
      if let encoding, !encoding.elementsEqual("identity".utf8) {
        finish(
          Status(.internalError, "the server used message encoding '\(String(decoding: encoding, as: UTF8.self))'"),
          resetStream: true)
        return
      }
      if let headerError {
        finish(Status(.internalError, headerError), resetStream: true)
        return
      }
      if kind.serverStreams { deliver(.initialMetadata) }
      return
    }
    // Trailers, or a trailers-only response.
    guard let code = grpcStatus, let statusCode = StatusCode(rawValue: code) else {
      finish(
        Status(grpcStatus == nil ? .internalError : .unknown,
               grpcStatus == nil ? "the server sent no grpc-status" : "invalid grpc-status \(grpcStatus!)"),
        resetStream: true)
      return
    }
    if deframer.bufferedBytes > 0 {
      finish(Status(.internalError, "the response ended inside a message"), resetStream: true)
      return
    }
    remoteStatus = Status(statusCode, grpcMessage)
  }

  func receivedData(_ chunk: UnsafeRawBufferPointer) {
    guard phase == .open, let connection else {
      connection?.consume(streamID: streamID, bytes: chunk.count)
      return
    }
    deframer.append(chunk)
    while true {
      let message: [UInt8]?
      do {
        message = try deframer.next()
      } catch {
        connection.consume(streamID: streamID, bytes: chunk.count + heldBytes)
        heldBytes = 0
        finish(error.status, resetStream: true)
        return
      }
      guard let message else { break }
      if kind.serverStreams {
        messages.append(message)
      } else {
        responseCount += 1
        if responseCount == 1 { response = message }
      }
    }
    // Back-pressure: while a complete message waits for a read, hold the window shut.
    if messagesHead < messages.count {
      heldBytes += chunk.count
    } else {
      connection.consume(streamID: streamID, bytes: chunk.count + heldBytes)
      heldBytes = 0
    }
    serviceRead()
  }

  /// Hands the host the next message if it asked; delivers the status once everything is read.
  private func serviceRead() {
    guard phase == .open else { return }
    if readWanted, messagesHead < messages.count {
      let message = messages[messagesHead]
      messagesHead += 1
      if messagesHead == messages.count {
        messages.removeAll(keepingCapacity: true)
        messagesHead = 0
        if let connection {
          connection.consume(streamID: streamID, bytes: heldBytes)
          loop.markDirty(connection)
        }
        heldBytes = 0
      }
      readWanted = false
      loop.clientReadDelivered(id)
      deliver(.message, message: message)
    }
    guard streamClosedByPeer, let status = remoteStatus, messagesHead == messages.count else {
      return
    }
    // A streaming response ends with a read answered "end of stream", then the status.
    if !kind.serverStreams || readWanted { deliverFinal(status) }
  }

  /// The stream closed: after the trailers, or reset.
  func streamClosed(errorCode: UInt32) {
    streamClosedByPeer = true
    guard phase == .open else { return }
    if remoteStatus == nil {
      let status: Status
      switch errorCode {
      case NGHTTP2_REFUSED_STREAM.rawValue:
        status = Status(.unavailable, "the server did not process the call (stream refused)")
      case NGHTTP2_CANCEL.rawValue:
        status = Status(.cancelled, "the server cancelled the stream")
      case NGHTTP2_ENHANCE_YOUR_CALM.rawValue:
        status = Status(.resourceExhausted, "the server reset the stream: ENHANCE_YOUR_CALM")
      case NGHTTP2_NO_ERROR.rawValue:
        status = Status(.internalError, "the stream ended without a status")
      default:
        status = Status(.internalError, "the server reset the stream: \(nghttp2HTTP2Error(errorCode))")
      }
      finish(status, resetStream: false)
      return
    }
    serviceRead()
  }
}

/// gRPC's mapping of an HTTP status (when there is no grpc-status) to a status code.
func httpStatusCode(_ http: Int) -> StatusCode {
  switch http {
  case 400: return .internalError
  case 401: return .unauthenticated
  case 403: return .permissionDenied
  case 404: return .unimplemented
  case 429, 502, 503, 504: return .unavailable
  default: return .unknown
  }
}

private func nghttp2HTTP2Error(_ code: UInt32) -> String {
  String(cString: nghttp2_http2_strerror(code))
}
