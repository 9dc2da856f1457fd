import CLinux
import CNGHTTP2
import Glibc

/// One accepted HTTP/2 connection: a byte transport below, an nghttp2 server session, and the
/// calls (streams) it carries. Owned by one loop and touched only there.
final class ServerConnection: HTTP2Connection {
  let server: Server
  let peer: String
  var calls: [Int32: ServerCall] = [:]
  private var goingAway = false

  private init(loop: EventLoop, server: Server, transport: ByteTransport, peer: String) {
    self.server = server
    self.peer = peer
    super.init(loop: loop, transport: transport)
  }

  /// Takes ownership of an accepted socket on `loop` (runs on that loop).
  static func adopt(fd: Int32, peer: String, server: Server, loop: EventLoop) {
    guard server.isServing else {
      Glibc.close(fd)
      server.connectionClosed()
      return
    }
    let c = ServerConnection(loop: loop, server: server, transport: SocketTransport(fd: fd), peer: peer)
    guard c.startSession() else {
      c.transport.close()
      server.connectionClosed()
      return
    }
    loop.register(fd: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, handler: c)
    c.flush()
  }

  private func startSession() -> Bool {
    var s: OpaquePointer?
    let rv = nghttp2_session_server_new2(
      &s, NGHTTP2Callbacks.shared.server, Unmanaged.passUnretained(self).toOpaque(),
      NGHTTP2Callbacks.shared.options)
    guard rv == 0, let s else { return false }
    session = s
    var settings = [
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
        value: server.config.maxConcurrentStreams),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
        value: UInt32(Server.streamWindow)),
    ]
    nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    nghttp2_session_set_local_window_size(
      s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(Server.connectionWindow))
    return true
  }

  override var peerClosedStatus: Status { Status(.cancelled, "connection closed by the client") }

// MARK: - Shutdown

  /// Sends GOAWAY: no new streams; the connection closes once its calls are done.
  func beginGracefulShutdown() {
    guard !closed, !goingAway, let session else { return }
    goingAway = true
    nghttp2_submit_goaway(
      session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
      NGHTTP2_NO_ERROR.rawValue, nil, 0)
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
    let open = calls.values
    calls.removeAll()
    for call in open { call.connectionLost(reason) }
    server.connectionClosed()
  }

  // MARK: - Calls

  func call(for streamID: Int32) -> ServerCall? {
    guard let p = nghttp2_session_get_stream_user_data(session, streamID) else { return nil }
    return Unmanaged<ServerCall>.fromOpaque(p).takeUnretainedValue()
  }

  func beginCall(streamID: Int32) {
    let call = ServerCall(streamID: streamID, connection: self)
    calls[streamID] = call
    nghttp2_session_set_stream_user_data(session, streamID, Unmanaged.passUnretained(call).toOpaque())
  }

  func endCall(streamID: Int32, errorCode: UInt32) {
    guard let call = calls.removeValue(forKey: streamID) else { return }
    call.streamClosed(errorCode: errorCode)
  }

}
