import CNGHTTP2
import Glibc

/// One gRPC call on an HTTP/2 stream: validates the request head, reassembles request
/// messages, talks to the host through its token, and writes the response. Loop-bound.
final class ServerCall: HostAnswerable {
  enum Phase {
    /// Receiving the request head.
    case headers
    /// Unary request kinds: waiting for the single message and the half-close.
    case awaitingRequest
    /// The host was sent the CALL event; the token is open.
    case active
    /// The call is over for the host (completed, cancelled or rejected).
    case done
  }

  let streamID: Int32
  unowned let connection: ServerConnection
  private var phase = Phase.headers

  // Request head.
  private var path = ""
  private var authority = ""
  private var httpMethod = ""
  private var contentType: [UInt8]?
  private var te: [UInt8]?
  private var timeout: [UInt8]?
  private var encoding: [UInt8]?
  private var metadata: [MetadataEntry] = []
  private var headError: String?
  private var registration: MethodRegistration?
  private(set) var token: UInt64 = 0
  private var deadline = Int64.max

  // Request body.
  private(set) var requestHasEnded = false
  private var deframer: MessageDeframer
  private var unaryMessage: [UInt8]?
  private var pending: [[UInt8]] = []
  private var pendingHead = 0
  private var readWanted = false
  /// Bytes received but not yet returned to the peer's flow-control window.
  private var heldBytes = 0

  // Response.
  private var headersSubmitted = false
  private var responseClosed = false
  private var initialMetadata: [MetadataEntry] = []
  private var out: [UInt8] = []
  private var outOffset = 0
  private var pendingTrailers: HeaderBlock?
  private var dataDeferred = false

  init(streamID: Int32, connection: ServerConnection) {
    self.streamID = streamID
    self.connection = connection
    self.deframer = MessageDeframer(maxMessageSize: connection.server.config.maxReceiveMessageSize)
  }

  private var loop: EventLoop { connection.loop }
  private var kind: MethodKind { registration?.kind ?? .unary }

  // MARK: - Request head

  func receivedHeader(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
    if name.first == UInt8(ascii: ":") {
      if name.equals(":path") {
        path = String(decoding: value, as: UTF8.self)
      } else if name.equals(":authority") {
        authority = String(decoding: value, as: UTF8.self)
      } else if name.equals(":method") {
        httpMethod = String(decoding: value, as: UTF8.self)
      }
      return
    }
    if name.equals("content-type") {
      contentType = Array(value)
    } else if name.equals("te") {
      te = Array(value)
    } else if name.equals("grpc-timeout") {
      timeout = Array(value)
    } else if name.equals("grpc-encoding") {
      encoding = Array(value)
    } else if MetadataValidation.isReserved(name) {
      return
    } else if MetadataValidation.isBinaryKey(name) {
      let key = String(decoding: name, as: UTF8.self)
      guard let entries = MetadataEntry.fromWire(key: key, value: value) else {
        headError = "metadata '\(key)' is not valid base64"
        return
      }
      metadata += entries
    } else {
      metadata.append(MetadataEntry(key: String(decoding: name, as: UTF8.self), value: Array(value)))
    }
  }

  /// The request head is complete: validate it, find the method, and start the call.
  func headersComplete() {
    guard phase == .headers else { return }
    phase = .done  // until proven otherwise
    guard let ct = contentType, isGRPCContentType(ct) else {
      respondHTTPError(status: "415", Status(.internalError, "invalid gRPC content-type"))
      return
    }
    guard httpMethod.utf8.elementsEqual("POST".utf8) else {
      respond(Status(.invalidArgument, ":method must be POST, got '\(httpMethod)'"))
      return
    }
    if let te, !te.withUnsafeBufferPointer({ $0.equals("trailers") }) {
      respond(Status(.invalidArgument, "te must be 'trailers'"))
      return
    }
    if let headError {
      respond(Status(.internalError, headError))
      return
    }
    if let encoding, !encoding.withUnsafeBufferPointer({ $0.equals("identity") }) {
      var trailers = [MetadataEntry]()
      trailers.append(MetadataEntry("grpc-accept-encoding", "identity"))
      respond(
        Status(
          .unimplemented,
          "message encoding '\(String(decoding: encoding, as: UTF8.self))' is not supported"),
        reservedTrailers: trailers)
      return
    }
    guard let registration = connection.server.methods[path] else {
      respond(Status(.unimplemented, "Method not found: \(path)"))
      return
    }
    self.registration = registration
    if let timeout, let nanos = GRPCTimeout.parse(timeout) {
      let now = monotonicNanos()
      deadline = nanos >= Int64.max - now ? Int64.max : now + nanos
      if deadline != Int64.max {
        loop.schedule(at: deadline) { [weak self] in self?.deadlineExpired() }
      }
    }
    if registration.kind.clientStreams {
      activate(message: nil)
    } else {
      phase = .awaitingRequest
    }
  }

  private func isGRPCContentType(_ ct: [UInt8]) -> Bool {
    let prefix = "application/grpc".utf8
    guard ct.starts(with: prefix) else { return false }
    if ct.count == prefix.count { return true }
    let next = ct[prefix.count]
    return next == UInt8(ascii: "+") || next == UInt8(ascii: ";")
  }

  /// Issues the token and sends the host the CALL event.
  private func activate(message: [UInt8]?) {
    guard let registration else { return }
    token = loop.issueToken(call: self, serverID: connection.server.id, kind: registration.kind)
    phase = .active
    if !deliver(.call, message: message) {
      _ = loop.closeToken(token)
      phase = .done
      sendStatus(Status(.unavailable, "the server's event queue is shut down"), trailers: [])
    }
  }

  private func deliver(_ type: HostEventType, message: [UInt8]? = nil, code: StatusCode = .ok)
    -> Bool
  {
    guard let registration else { return false }
    let event = HostEvent(
      type: type, token: token, serverID: connection.server.id, method: path,
      kind: registration.kind, authority: authority, peer: connection.peer,
      metadata: type == .call ? metadata : [], deadline: deadline, message: message,
      statusCode: code)
    return registration.sink.deliver(event)
  }

  // MARK: - Request body

  func receivedData(_ chunk: UnsafeRawBufferPointer) {
    guard phase == .awaitingRequest || phase == .active, !responseClosed else {
      connection.consume(streamID: streamID, bytes: chunk.count)
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
        fail(error.status)
        return
      }
      guard let message else { break }
      if kind.clientStreams {
        pending.append(message)
      } else if unaryMessage != nil {
        connection.consume(streamID: streamID, bytes: chunk.count)
        fail(Status(.internalError, "a \(kind) request must carry exactly one message, got more"))
        return
      } else {
        unaryMessage = message
      }
    }
    // Back-pressure: while a complete message waits for the host, hold the window shut.
    if pendingHead < pending.count {
      heldBytes += chunk.count
    } else {
      connection.consume(streamID: streamID, bytes: chunk.count + heldBytes)
      heldBytes = 0
    }
    serviceRead()
  }

  /// The client half-closed (END_STREAM).
  func requestEnded() {
    requestHasEnded = true
    switch phase {
    case .awaitingRequest:
      if deframer.bufferedBytes > 0 {
        fail(Status(.internalError, "request ended inside a message"))
      } else if let message = unaryMessage {
        unaryMessage = nil
        activate(message: message)
      } else {
        fail(Status(.internalError, "a \(kind) request must carry exactly one message, got none"))
      }
    case .active:
      if deframer.bufferedBytes > 0 {
        fail(Status(.internalError, "request ended inside a message"))
      } else {
        serviceRead()
      }
    case .headers, .done:
      break
    }
  }

  /// Hands the host the next message or the half-close, if it asked for one.
  private func serviceRead() {
    guard readWanted, phase == .active else { return }
    if pendingHead < pending.count {
      let message = pending[pendingHead]
      pendingHead += 1
      if pendingHead == pending.count {
        pending.removeAll(keepingCapacity: true)
        pendingHead = 0
        connection.consume(streamID: streamID, bytes: heldBytes)
        heldBytes = 0
        loop.markDirty(connection)
      }
      readWanted = false
      loop.readDelivered(token, halfClose: false)
      _ = deliver(.message, message: message)
    } else if requestHasEnded {
      readWanted = false
      loop.readDelivered(token, halfClose: true)
      _ = deliver(.halfClose)
    }
  }

  // MARK: - Host answers (drained on the loop)

  func hostAnswered(_ answer: HostAnswer) {
    guard phase == .active else { return }
    switch answer {
    case .initialMetadata(let md):
      initialMetadata = md
      submitHeaders()
    case .message(let m):
      appendMessage(m)
    case .read:
      readWanted = true
      serviceRead()
    case .complete(let message, let status, let trailers):
      if let message { appendMessage(message) }
      loop.retireToken(token)
      phase = .done
      sendStatus(status, trailers: trailers)
    }
    loop.markDirty(connection)
  }

  private func appendMessage(_ m: [UInt8]) {
    guard !responseClosed else { return }
    m.withUnsafeBytes { MessageFramer.appendFramed($0, to: &out) }
    if !headersSubmitted {
      submitHeaders()
    } else if dataDeferred {
      dataDeferred = false
      nghttp2_session_resume_data(connection.session, streamID)
    }
  }

  // MARK: - Ending the call from the library's side

  /// Ends the call with `status` (deadline, malformed request, shutdown): the host is told if
  /// it still held the token, and the client receives the status.
  func fail(_ status: Status) {
    if phase == .active, loop.closeToken(token) {
      phase = .done
      _ = deliver(.cancelled, code: status.code)
    }
    phase = .done
    sendStatus(status, trailers: [])
    loop.markDirty(connection)
  }

  private func deadlineExpired() {
    guard !responseClosed else { return }
    fail(Status(.deadlineExceeded, "deadline exceeded"))
  }

  /// The stream closed (RST_STREAM from the client, or after the response).
  func streamClosed(errorCode: UInt32) {
    if phase == .active, loop.closeToken(token) {
      let code: StatusCode = monotonicNanos() >= deadline ? .deadlineExceeded : .cancelled
      phase = .done
      _ = deliver(.cancelled, code: code)
    }
    phase = .done
  }

  /// The connection went away with the call still open.
  func connectionLost(_ reason: Status) {
    if phase == .active, loop.closeToken(token) {
      phase = .done
      _ = deliver(.cancelled, code: reason.code)
    }
    phase = .done
  }

  // MARK: - Response

  private func responseHeaders() -> HeaderBlock {
    if initialMetadata.isEmpty { return .responseHeaders }
    var block = HeaderBlock()
    block.add(":status", "200")
    block.add("content-type", "application/grpc")
    block.add(metadata: initialMetadata)
    return block
  }

  private func submitHeaders() {
    guard !headersSubmitted, !responseClosed || pendingTrailers != nil else { return }
    headersSubmitted = true
    var provider = nghttp2_data_provider(
      source: nghttp2_data_source(ptr: nil), read_callback: serverCallReadCallback)
    responseHeaders().withNV { nva, n in
      _ = nghttp2_submit_response(connection.session, streamID, nva, n, &provider)
    }
  }

  /// Sends the status: as trailers after the messages, or trailers-only when nothing was sent.
  private func sendStatus(_ status: Status, trailers: [MetadataEntry],
                          reservedTrailers: [MetadataEntry] = []) {
    guard !responseClosed else { return }
    responseClosed = true
    var block = HeaderBlock()
    if !headersSubmitted && out.isEmpty {
      // Trailers-only: one HEADERS frame with END_STREAM.
      block.add(":status", "200")
      block.add("content-type", "application/grpc")
      block.add(status: status)
      for t in reservedTrailers { block.add(t.key.utf8, t.value) }
      block.add(metadata: trailers)
      headersSubmitted = true
      block.withNV { nva, n in
        _ = nghttp2_submit_response(connection.session, streamID, nva, n, nil)
      }
      return
    }
    if status.code == .ok && status.message.isEmpty && trailers.isEmpty && reservedTrailers.isEmpty {
      block = .okTrailers
    } else {
      block.add(status: status)
      for t in reservedTrailers { block.add(t.key.utf8, t.value) }
      block.add(metadata: trailers)
    }
    pendingTrailers = block
    if !headersSubmitted {
      submitHeaders()
    } else if dataDeferred {
      dataDeferred = false
      nghttp2_session_resume_data(connection.session, streamID)
    }
  }

  private func respond(_ status: Status, reservedTrailers: [MetadataEntry] = []) {
    sendStatus(status, trailers: [], reservedTrailers: reservedTrailers)
    loop.markDirty(connection)
  }

  private func respondHTTPError(status httpStatus: StaticString, _ status: Status) {
    responseClosed = true
    headersSubmitted = true
    var block = HeaderBlock()
    block.add(":status", httpStatus)
    block.add(status: status)
    block.withNV { nva, n in
      _ = nghttp2_submit_response(connection.session, streamID, nva, n, nil)
    }
    loop.markDirty(connection)
  }

  /// nghttp2 pulls response DATA: framed messages, then trailers (submitted from here).
  fileprivate func readResponse(
    into buf: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>
  ) -> Int {
    var n = 0
    let available = out.count - outOffset
    if available > 0 {
      n = min(length, available)
      out.withUnsafeBytes { raw in
        UnsafeMutableRawPointer(buf).copyMemory(from: raw.baseAddress! + outOffset, byteCount: n)
      }
      outOffset += n
      if outOffset < out.count { return n }
      out.removeAll(keepingCapacity: out.capacity <= 65536)
      outOffset = 0
    }
    if let trailers = pendingTrailers {
      pendingTrailers = nil
      flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
      trailers.withNV { nva, count in
        _ = nghttp2_submit_trailer(connection.session, streamID, nva, count)
      }
      return n
    }
    if n > 0 { return n }
    dataDeferred = true
    return Int(NGHTTP2_ERR_DEFERRED.rawValue)
  }
}

extension UnsafeBufferPointer<UInt8> {
  /// Byte-wise equality with a static ASCII string, by length then memcmp.
  @inline(__always)
  func equals(_ s: StaticString) -> Bool {
    count == s.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, s.utf8Start, count) == 0)
  }
}

private let serverCallReadCallback: nghttp2_data_source_read_callback = {
  session, streamID, buf, length, flags, _, _ in
  guard let buf, let flags,
    let p = nghttp2_session_get_stream_user_data(session, streamID)
  else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
  let call = Unmanaged<ServerCall>.fromOpaque(p).takeUnretainedValue()
  return call.readResponse(into: buf, length: length, flags: flags)
}
