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
  /// The first GOAWAY (the shutdown notice) went out; the final one follows its PING's ack.
  private var noticeSent = false
  private var goawayDebug: StaticString = ""
  private var handshakeTimer: LoopTimer?
  // Connection management (gRFC A8, A9).
  private var strikes: PingStrikes
  private var keepaliveTimer: LoopTimer?
  private var idleTimer: LoopTimer?
  private var ageTimer: LoopTimer?
  private var graceTimer: LoopTimer?
  private var goawayTimer: LoopTimer?

  private init(loop: EventLoop, server: Server, transport: ByteTransport, peer: String) {
    self.server = server
    self.peer = peer
    auth = transport.authProperties()
    let config = server.config
    strikes = PingStrikes(minIntervalNanos: config.minPingIntervalNanos, maxStrikes: config.maxPingStrikes,
                          permitWithoutCalls: config.keepalivePermitWithoutCalls)
    super.init(loop: loop, transport: transport,
               controlFramesPerSecond: config.maxControlFramesPerSecond)
  }

  /// Takes ownership of an accepted socket on `loop` (runs on that loop); with `credentials`
  /// the connection is TLS (its handshake first).
  static func adopt(fd: Int32, peer: String, server: Server, loop: EventLoop,
                    credentials: ServerCredentials?) {
    let transport: ByteTransport
    if let credentials {
      guard let tls = TLSTransport(server: fd, context: credentials.contextForNewConnection()) else {
        FileDescriptors.close(fd)
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
    c.startManagement()
    c.flush()
    return c
  }

  // MARK: - Connection management (gRFC A8 keepalive, A9 idle and age)

  private func startManagement() {
    let config = server.config
    scheduleKeepalive()
    armIdle()
    if config.maxConnectionAgeNanos != Int64.max {
      // ±10 % jitter, so that connections made together do not all go at once (A9).
      let age = config.maxConnectionAgeNanos
      let jittered = Time.add(age - age / 10, Int64.random(in: 0...max(0, age / 5)))
      ageTimer = loop.schedule(after: jittered) { [unowned self] in
        ageTimer = nil
        maxAgeReached()
      }
    }
  }

  private func scheduleKeepalive() {
    let interval = server.config.keepaliveTimeNanos
    guard interval != Int64.max, !closed else { return }
    keepaliveTimer = loop.schedule(after: interval) { [unowned self] in
      keepaliveTimer = nil
      keepaliveTick()
    }
  }

  private func keepaliveTick() {
    guard !closed else { return }
    let config = server.config
    if !calls.isEmpty || config.keepalivePermitWithoutCalls {
      sendKeepalivePing(timeoutNanos: config.keepaliveTimeoutNanos,
                        "keepalive ping not acknowledged; the client is gone")
    }
    scheduleKeepalive()
  }

  /// With no call open, the idle timer runs; a call cancels it.
  private func armIdle() {
    let idle = server.config.maxConnectionIdleNanos
    guard idle != Int64.max, idleTimer == nil, calls.isEmpty, !goingAway, !closed else { return }
    idleTimer = loop.schedule(after: idle) { [unowned self] in
      idleTimer = nil
      if calls.isEmpty { beginGracefulShutdown(debug: "max_idle") }
    }
  }

  private func maxAgeReached() {
    beginGracefulShutdown(debug: "max_age")
    let grace = server.config.maxConnectionAgeGraceNanos
    guard grace != Int64.max, !closed else { return }
    graceTimer = loop.schedule(after: grace) { [unowned self] in
      graceTimer = nil
      forceShutdown(Status(.unavailable, "max connection age grace elapsed"))
    }
  }

  private func stopManagement() {
    for t in [keepaliveTimer, idleTimer, ageTimer, graceTimer, goawayTimer] {
      loop.cancel(t)
    }
    keepaliveTimer = nil
    idleTimer = nil
    ageTimer = nil
    graceTimer = nil
    goawayTimer = nil
  }

  override var peerClosedStatus: Status { Status(.cancelled, "connection closed by the client") }

  /// The TLS handshake is done: the calls will report the peer's certificate. (The server's
  /// SETTINGS were submitted at once; they go out now.)
  override func handshakeCompleted() {
    auth = transport.authProperties()
  }

  // MARK: - Shutdown

  /// How long the final GOAWAY waits for the ack of the PING sent with the shutdown notice.
  static let goawayAckWaitNanos: Int64 = 1_000_000_000

  /// Graceful GOAWAY in two steps, as gRPC C-core's: first GOAWAY with the largest stream id and
  /// a PING (the client opens no more streams, and none on its way is refused), then, once the
  /// PING is acknowledged (streams sent before it have arrived) or a second passed, GOAWAY with
  /// the last stream processed. The connection closes once its calls are done.
  func beginGracefulShutdown(debug: StaticString = "") {
    guard !closed, !goingAway, let session else { return }
    goingAway = true
    goawayDebug = debug
    loop.cancel(idleTimer)
    idleTimer = nil
    session.submitShutdownNotice()
    session.ping()
    noticeSent = true
    goawayTimer = loop.schedule(after: ServerConnection.goawayAckWaitNanos) { [unowned self] in
      goawayTimer = nil
      finalGoaway()
    }
    flush()
  }

  /// The second GOAWAY: streams after the last one processed are refused.
  private func finalGoaway() {
    guard noticeSent, !closed, let session else { return }
    noticeSent = false
    loop.cancel(goawayTimer)
    goawayTimer = nil
    session.submitGracefulGoaway(debug: goawayDebug)
    loop.markDirty(self)
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
    stopManagement()
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
      if let idleTimer {
        loop.cancel(idleTimer)
        self.idleTimer = nil
      }
    }
    super.headersBegin(streamID: streamID, isRequest: isRequest, trailers: trailers)
  }

  override func frameReceived(_ frame: FrameHeader) {
    switch frame.kind {
    case .settings where !frame.isAck:
      loop.cancel(handshakeTimer)  // the preface and SETTINGS arrived
      handshakeTimer = nil
    case .ping where frame.isAck:
      keepaliveAcked()
      if noticeSent { finalGoaway() }
    case .ping:
      if strikes.pingReceived(at: monotonicNanos(), callsOpen: !calls.isEmpty) {
        terminate(.enhanceYourCalm, "the client sent too many pings", debug: "too_many_pings")
        return
      }
    default:
      break
    }
    super.frameReceived(frame)
  }

  override func frameSent(_ frame: FrameHeader) {
    super.frameSent(frame)
    if frame.kind == .data || frame.kind == .headers { strikes.forgive() }
    guard frame.endsStream, frame.streamID > 0, let call = calls[frame.streamID],
      !call.requestHasEnded
    else { return }
    // The response is over but the client is still sending: tell it to stop.
    session?.resetStream(frame.streamID, .noError)
  }

  override func streamClosed(streamID: Int32, errorCode: UInt32) {
    calls.removeValue(forKey: streamID)?.streamClosed(errorCode: errorCode)
    if calls.isEmpty { armIdle() }
  }
}
