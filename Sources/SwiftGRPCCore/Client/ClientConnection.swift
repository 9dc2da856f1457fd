import CLinux
import CNGHTTP2
import Glibc

/// One outgoing HTTP/2 connection of a channel: a non-blocking connect, then an nghttp2 client
/// session carrying the calls of its subchannel. Ready once the server's SETTINGS arrive.
/// Owned by the channel's loop and touched only there.
final class ClientConnection: HTTP2Connection {
  enum Phase { case connecting, handshaking, ready, draining }

  unowned let subchannel: Subchannel
  private(set) var phase = Phase.connecting
  var calls: [Int32: ClientCall] = [:]
  /// Keepalive: bumped by every PING ack, so a stale timeout check can tell it was answered.
  private var pingGeneration = 0
  private var pingOutstanding = false

  /// Per-stream and per-connection receive windows (bytes).
  static let streamWindow = 1 << 20
  static let connectionWindow = 16 << 20

  private init(loop: EventLoop, subchannel: Subchannel, transport: ByteTransport) {
    self.subchannel = subchannel
    super.init(loop: loop, transport: transport)
  }

  var channel: Channel { subchannel.channel }

  /// Starts connecting to `address` on `loop`. Throws if the socket cannot even be created or
  /// the connect fails at once (refused Unix socket, unreachable network).
  static func connect(to address: ResolvedAddress, subchannel: Subchannel, loop: EventLoop)
    throws(SystemError) -> ClientConnection
  {
    let family = Int32(address.storage.ss_family)
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | swiftgrpc_sock_nonblock() | swiftgrpc_sock_cloexec(), 0)
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
        Glibc.close(fd)
        throw SystemError("connect(\(address.description))", errno: e)
      }
    }
    let c = ClientConnection(loop: loop, subchannel: subchannel, transport: SocketTransport(fd: fd))
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
    guard startSession() else {
      close(reason: Status(.internalError, "could not create an HTTP/2 session"))
      return
    }
    phase = .handshaking
    loop.modify(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
    flush()
  }

  private func startSession() -> Bool {
    var s: OpaquePointer?
    let rv = nghttp2_session_client_new2(
      &s, NGHTTP2Callbacks.shared.client, Unmanaged.passUnretained(self).toOpaque(),
      NGHTTP2Callbacks.shared.options)
    guard rv == 0, let s else { return false }
    session = s
    var settings = [
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
        value: UInt32(ClientConnection.streamWindow)),
    ]
    nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    nghttp2_session_set_local_window_size(
      s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(ClientConnection.connectionWindow))
    return true
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
    let wasUsable = phase == .ready || phase == .handshaking
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
    nghttp2_session_terminate_session(session, NGHTTP2_NO_ERROR.rawValue)
    super.flush()
    if !closed { close(reason: Status(.unavailable, "connection closed")) }
  }

  override func didClose(reason: Status) {
    let open = calls.values
    calls.removeAll()
    for call in open { call.finish(reason, resetStream: false) }
    subchannel.connectionClosed(self, reason: reason)
  }

  // MARK: - Calls

  func call(for streamID: Int32) -> ClientCall? {
    guard let p = nghttp2_session_get_stream_user_data(session, streamID) else { return nil }
    return Unmanaged<ClientCall>.fromOpaque(p).takeUnretainedValue()
  }

  /// Opens a stream for `call`. Returns false if this connection can take no more streams.
  func startStream(_ call: ClientCall) -> Bool {
    guard phase == .ready, let session else { return false }
    var provider = nghttp2_data_provider(
      source: nghttp2_data_source(ptr: nil), read_callback: clientCallReadCallback)
    let id = call.requestHeaders().withNV { nva, n in
      nghttp2_submit_request(session, nil, nva, n, &provider, Unmanaged.passUnretained(call).toOpaque())
    }
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

  func streamClosed(streamID: Int32, errorCode: UInt32) {
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

  func resetStream(_ streamID: Int32, code: nghttp2_error_code = NGHTTP2_CANCEL) {
    guard let session else { return }
    nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, code.rawValue)
    loop.markDirty(self)
  }

  func resumeData(_ streamID: Int32) {
    guard let session else { return }
    nghttp2_session_resume_data(session, streamID)
    loop.markDirty(self)
  }

  // MARK: - Keepalive

  private func scheduleKeepalive() {
    let interval = channel.config.keepaliveTimeNanos
    guard interval < Int64.max / 2 else { return }
    loop.schedule(at: monotonicNanos() + interval) { [weak self] in self?.keepaliveTick() }
  }

  private func keepaliveTick() {
    guard !closed, let session else { return }
    let config = channel.config
    if !pingOutstanding && (!calls.isEmpty || config.keepalivePermitWithoutCalls) {
      pingOutstanding = true
      let generation = pingGeneration
      nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
      loop.markDirty(self)
      loop.schedule(at: monotonicNanos() + config.keepaliveTimeoutNanos) { [weak self] in
        guard let self, !self.closed, self.pingGeneration == generation else { return }
        self.close(reason: Status(.unavailable, "keepalive ping not acknowledged; peer is gone"))
      }
    }
    scheduleKeepalive()
  }

  func pingAcked() {
    pingGeneration += 1
    pingOutstanding = false
  }
}

/// nghttp2 pulls request DATA: framed messages, then END_STREAM after the half-close.
private let clientCallReadCallback: nghttp2_data_source_read_callback = {
  session, streamID, buf, length, flags, _, _ in
  guard let buf, let flags,
    let p = nghttp2_session_get_stream_user_data(session, streamID)
  else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
  let call = Unmanaged<ClientCall>.fromOpaque(p).takeUnretainedValue()
  return call.readRequest(into: buf, length: length, flags: flags)
}
