import CLinux
import Glibc

/// One accepted HTTP/2 connection: a byte transport below, a server session, and the calls
/// (streams) it carries, at most `maxConcurrentStreams` at once (excess streams are refused one
/// by one). A connection that has not sent its preface and SETTINGS within the handshake timeout
/// is closed. Owned by one loop and touched only there.
final class ServerConnection: HTTP2Connection {
  let server: Server
  let peer: String
  /// The auth properties every call of this connection reports (TLS: the peer's certificate).
  private(set) var auth: [MetadataEntry]
  private(set) var calls: [Int32: ServerCall] = [:]
  private var goingAway = false
  private var handshakeTimer: LoopTimer?

  private init(loop: EventLoop, server: Server, transport: ByteTransport, peer: String) {
    self.server = server
    self.peer = peer
    auth = transport.authProperties()
    super.init(loop: loop, transport: transport,
               controlFramesPerSecond: server.config.maxControlFramesPerSecond)
  }

  /// Takes ownership of an accepted socket on `loop` (runs on that loop); with `credentials`
  /// the connection is TLS (its handshake first).
  static func adopt(fd: Int32, peer: String, server: Server, loop: EventLoop,
                    credentials: ServerCredentials?) {
    let transport: ByteTransport
    if let credentials {
      guard let tls = TLSTransport(server: fd, context: credentials.contextForNewConnection()) else {
        Glibc.close(fd)
        server.connectionClosed()
        return
      }
      transport = tls
    } else {
      transport = SocketTransport(fd: fd)
    }
    adopt(transport: transport, peer: peer, server: server, loop: loop)
  }

  /// Serves a connection over `transport` on `loop` (runs on that loop). Returns it, or nil if
  /// the server is not serving (the transport is closed then).
  @discardableResult
  static func adopt(transport: ByteTransport, peer: String, server: Server, loop: EventLoop)
    -> ServerConnection?
  {
    guard server.isServing else {
      transport.close()
      server.connectionClosed()
      return nil
    }
    let fd = transport.fd
    let c = ServerConnection(loop: loop, server: server, transport: transport, peer: peer)
    guard let session = HTTP2Session.server(owner: c) else {
      c.transport.close()
      server.connectionClosed()
      return nil
    }
    let config = server.config
    c.session = session
    session.start(
      settings: [
        (.initialWindowSize, UInt32(Server.streamWindow)),
        (.maxHeaderListSize, UInt32(config.maxMetadataSize)),
      ],
      maxConcurrentStreams: config.maxConcurrentStreams, connectionWindow: Int32(Server.connectionWindow))
    loop.register(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, handler: c)
    // A strong capture (a weak one would give every connection a side table, and each of its
    // retains the slow path): the timer is cancelled when the handshake is done or on close.
    c.handshakeTimer = loop.schedule(after: config.handshakeTimeoutNanos) {
      c.close(reason: Status(.unavailable, "the client did not complete the HTTP/2 handshake in time"))
    }
    c.flush()
    return c
  }

  override var peerClosedStatus: Status { Status(.cancelled, "connection closed by the client") }

  /// The TLS handshake is done: the calls will report the peer's certificate. (The server's
  /// SETTINGS were submitted at once; they go out now.)
  override func handshakeCompleted() {
    auth = transport.authProperties()
  }

  // MARK: - Shutdown

  /// Sends GOAWAY: no new streams; the connection closes once its calls are done.
  func beginGracefulShutdown() {
    guard !closed, !goingAway, let session else { return }
    goingAway = true
    session.submitGracefulGoaway()
    flush()
  }

  /// Fails every call with `status` (clients see it, hosts are told), then closes.
  func forceShutdown(_ status: Status) {
    guard !closed else { return }
    for call in calls.values { call.fail(status) }
    beginGracefulShutdown()
    if !closed {
      flush()
      close(reason: status)
    }
  }

  /// The connection closed: calls still open are cancelled for their hosts.
  override func didClose(reason: Status) {
    loop.cancel(handshakeTimer)
    handshakeTimer = nil
    let open = calls.values
    calls.removeAll()
    for call in open { call.connectionLost(reason) }
    // Counted as closed once the events just delivered have reached the host (a batch host fn
    // is handed them at the end of the iteration): a shutdown that waits for the count never
    // returns before them.
    loop.atEndOfIteration { [server] in server.connectionClosed() }
  }

  // MARK: - nghttp2 callbacks

  override func headersBegin(streamID: Int32, isRequest: Bool, trailers: Bool) {
    if isRequest && calls[streamID] == nil, let session {
      if calls.count >= Int(server.config.maxConcurrentStreams) {
        session.resetStream(streamID, .refusedStream)
        return
      }
      let call = ServerCall(streamID: streamID, connection: self)
      calls[streamID] = call
      session.bind(call, to: streamID)
    }
    super.headersBegin(streamID: streamID, isRequest: isRequest, trailers: trailers)
  }

  override func frameReceived(_ frame: FrameHeader) {
    if frame.kind == .settings && !frame.isAck {
      loop.cancel(handshakeTimer)  // the preface and SETTINGS arrived
      handshakeTimer = nil
    }
    super.frameReceived(frame)
  }

  override func frameSent(_ frame: FrameHeader) {
    super.frameSent(frame)
    guard frame.endsStream, frame.streamID > 0, let call = calls[frame.streamID],
      !call.requestHasEnded
    else { return }
    // The response is over but the client is still sending: tell it to stop.
    session?.resetStream(frame.streamID, .noError)
  }

  override func streamClosed(streamID: Int32, errorCode: UInt32) {
    calls.removeValue(forKey: streamID)?.streamClosed(errorCode: errorCode)
  }
}
