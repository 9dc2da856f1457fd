import CLinux
import Glibc

/// One outgoing HTTP/2 connection of a channel: a non-blocking connect, then an nghttp2 client
/// session carrying the calls of its subchannel. Ready once the server's SETTINGS arrive.
/// Owned by the channel's loop and touched only there.
final class ClientConnection: HTTP2Connection {
  /// TCP connect, TLS handshake (secure channels), HTTP/2 SETTINGS, then ready.
  enum Phase { case connecting, securing, handshaking, ready, draining }

  /// Strong: a connection may outlive its subchannel's place in the channel (draining after a
  /// GOAWAY, or its address gone from the name's resolution) and still report its end to it.
  /// The cycle with `Subchannel.connection` ends when the connection closes.
  let subchannel: Subchannel
  private(set) var phase = Phase.connecting
  private(set) var calls: [Int32: ClientCall] = [:]
  private var keepaliveTimer: LoopTimer?

  /// Per-stream and per-connection receive windows (bytes).
  static let streamWindow = 1 << 20
  static let connectionWindow = 16 << 20

  private init(loop: EventLoop, subchannel: Subchannel, transport: ByteTransport) {
    self.subchannel = subchannel
    super.init(loop: loop, transport: transport,
               controlFramesPerSecond: subchannel.channel.config.maxControlFramesPerSecond)
  }

  var channel: Channel { subchannel.channel }

  /// Starts connecting to `address` on `loop`. Throws if the socket cannot even be created or
  /// the connect fails at once (refused Unix socket, unreachable network).
  static func connect(to address: ResolvedAddress, subchannel: Subchannel, loop: EventLoop)
    throws(SystemError) -> ClientConnection
  {
    let family = Int32(address.storage.ss_family)
    let fd = FileDescriptors.track(
      socket(family, Int32(SOCK_STREAM.rawValue) | swiftgrpc_sock_nonblock() | swiftgrpc_sock_cloexec(), 0))
    if fd < 0 { throw SystemError("socket") }
    if !address.isUnix {
      var one: Int32 = 1
      setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
    }
    var storage = address.storage
    let rc = withUnsafePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
    }
    if rc != 0 {
      let e = swiftgrpc_errno()
      if e != EINPROGRESS && e != EINTR {
        FileDescriptors.close(fd)
        throw SystemError("connect(\(address.description))", errno: e)
      }
    }
    let transport: ByteTransport
    if let credentials = subchannel.channel.config.credentials {
      let name = credentials.serverNameOverride ?? subchannel.channel.target.host
      guard let tls = TLSTransport(client: fd, context: credentials.context, serverName: name) else {
        FileDescriptors.close(fd)
        throw SystemError("SSL_new", errno: ENOMEM)
      }
      transport = tls
    } else {
      transport = SocketTransport(fd: fd)
    }
    let c = ClientConnection(loop: loop, subchannel: subchannel, transport: transport)
    loop.register(fd: fd, events: EPOLLOUT.rawValue | EPOLLRDHUP.rawValue, handler: c)
    return c
  }

  override var peerClosedStatus: Status { Status(.unavailable, "connection closed by the server") }

  override func handleEvents(_ events: UInt32) {
    guard phase == .connecting else {
      super.handleEvents(events)
      return
    }
    var err: Int32 = 0
    var len = socklen_t(4)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
    if err == 0 && events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { err = ECONNREFUSED }
    if err != 0 {
      close(reason: Status(.unavailable, SystemError("connect(\(subchannel.address.description))", errno: err).description))
      return
    }
    loop.modify(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
    if transport.needsHandshake {
      phase = .securing
      continueHandshake()
    } else {
      startHTTP2()
    }
  }

  override func handshakeCompleted() { startHTTP2() }

  /// The connection is up (and secured): the HTTP/2 session starts; ready once the server's
  /// SETTINGS arrive.
  private func startHTTP2() {
    guard startSession() else {
      close(reason: Status(.internalError, "could not create an HTTP/2 session"))
      return
    }
    phase = .handshaking
    flush()
  }

  private func startSession() -> Bool {
    guard let session = HTTP2Session.client(owner: self) else { return false }
    self.session = session
    session.start(
      settings: [
        (.enablePush, 0),
        (.initialWindowSize, UInt32(ClientConnection.streamWindow)),
        (.maxHeaderListSize, UInt32(channel.config.maxMetadataSize)),
      ],
      maxConcurrentStreams: nil, connectionWindow: Int32(ClientConnection.connectionWindow))
    return true
  }

  override func frameReceived(_ frame: FrameHeader) {
    switch frame.kind {
    case .settings where !frame.isAck: settingsReceived()
    case .ping where frame.isAck: keepaliveAcked()
    case .goaway:
      if frame.goawayCode == HTTP2Session.ErrorCode.enhanceYourCalm.rawValue
        && frame.goawayDebug == "too_many_pings"
      {
        channel.tooManyPings()
      }
      goawayReceived()
    default: break
    }
    super.frameReceived(frame)
  }

  /// The server's first SETTINGS: the connection can carry calls.
  func settingsReceived() {
    guard phase == .handshaking else { return }
    phase = .ready
    scheduleKeepalive()
    subchannel.connectionReady(self)
  }

  /// The server sent GOAWAY: no new calls here. nghttp2 closes the streams it did not process
  /// (REFUSED_STREAM); the others finish.
  func goawayReceived() {
    guard phase != .draining else { return }
    let wasUsable = phase == .ready || phase == .handshaking || phase == .securing
    phase = .draining
    if wasUsable { subchannel.connectionDraining(self) }
    loop.markDirty(self)
  }

  /// Stops taking calls; closes once the last one ends (channel close, GOAWAY). The close
  /// itself happens in `flush`, never inside an nghttp2 callback.
  func drain() {
    guard !closed else { return }
    phase = .draining
    loop.markDirty(self)
  }

  override func flush() {
    super.flush()
    guard phase == .draining, calls.isEmpty, !closed, let session else { return }
    session.terminate(.noError)
    super.flush()
    if !closed { close(reason: Status(.unavailable, "connection closed")) }
  }

  override func didClose(reason: Status) {
    loop.cancel(keepaliveTimer)
    keepaliveTimer = nil
    let open = calls.values
    calls.removeAll()
    for call in open { call.finish(reason, resetStream: false) }
    subchannel.connectionClosed(self, reason: reason)
  }

  // MARK: - Calls

  /// Opens a stream for `call`. Returns false if this connection can take no more streams.
  func startStream(_ call: ClientCall) -> Bool {
    guard phase == .ready, let session else { return false }
    let id = session.submitRequest(headers: call.requestHeaders(), call: call)
    if id < 0 {
      // Stream ids exhausted: move to a fresh connection.
      drain()
      subchannel.connectionDraining(self)
      return false
    }
    calls[id] = call
    call.opened(on: self, streamID: id)
    loop.markDirty(self)
    return true
  }

  override func streamClosed(streamID: Int32, errorCode: UInt32) {
    guard let call = calls.removeValue(forKey: streamID) else { return }
    call.streamClosed(errorCode: errorCode)
    if calls.isEmpty {
      if phase == .draining {
        loop.markDirty(self)
      } else {
        channel.connectionIdle(self)
      }
    }
  }

  // MARK: - Keepalive

  private func scheduleKeepalive() {
    let interval = channel.keepaliveTimeNanos
    guard interval != Time.never else { return }
    keepaliveTimer = loop.schedule(after: interval) { [weak self] in self?.keepaliveTick() }
  }

  private func keepaliveTick() {
    keepaliveTimer = nil
    guard !closed, session != nil else { return }
    let config = channel.config
    if !calls.isEmpty || config.keepalivePermitWithoutCalls {
      sendKeepalivePing(timeoutNanos: config.keepaliveTimeoutNanos, "keepalive ping not acknowledged; peer is gone")
    }
    scheduleKeepalive()
  }
}
