import CLinux
import CNGHTTP2
import Glibc

/// One accepted HTTP/2 connection: a byte transport below, an nghttp2 server session, and the
/// calls (streams) it carries. Owned by one loop and touched only there.
final class ServerConnection: FDHandler {
  let loop: EventLoop
  let server: Server
  let transport: ByteTransport
  let peer: String
  let fd: Int32
  fileprivate(set) var session: OpaquePointer?
  var calls: [Int32: ServerCall] = [:]
  var isDirty = false
  private var out: [UInt8] = []
  private var outOffset = 0
  private var writeInterest = false
  private(set) var closed = false
  private var goingAway = false

  private init(loop: EventLoop, server: Server, transport: ByteTransport, peer: String) {
    self.loop = loop
    self.server = server
    self.transport = transport
    self.peer = peer
    self.fd = transport.fd
    out.reserveCapacity(65536)
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

  // MARK: - I/O

  func handleEvents(_ events: UInt32) {
    if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue)
      != 0
    {
      readAvailable()
      if closed { return }
    }
    // Answers the host gave inline while we parsed go out in the same write.
    loop.drainQueue()
    flush()
  }

  private func readAvailable() {
    let buffer = loop.readBuffer
    for _ in 0..<16 {
      switch transport.read(into: buffer) {
      case .bytes(let n):
        let rv = nghttp2_session_mem_recv(
          session, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), n)
        if rv < 0 {
          close(reason: Status(.unavailable, "HTTP/2 protocol error: \(nghttp2Error(Int32(rv)))"))
          return
        }
        if closed { return }
        if n < buffer.count { return }
      case .wouldBlock:
        return
      case .eof, .failed:
        close(reason: Status(.cancelled, "connection closed by the client"))
        return
      }
    }
  }

  /// Writes what nghttp2 has to send; closes the connection once the session is done.
  func flush() {
    guard !closed, let session else { return }
    while true {
      if outOffset == out.count {
        out.removeAll(keepingCapacity: true)
        outOffset = 0
        while out.count < 65536 {
          var p: UnsafePointer<UInt8>?
          let n = nghttp2_session_mem_send(session, &p)
          if n < 0 {
            close(reason: Status(.internalError, "HTTP/2 send failed: \(nghttp2Error(Int32(n)))"))
            return
          }
          if n == 0 { break }
          out.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        }
        if out.isEmpty { break }
      }
      let result = out.withUnsafeBytes { raw in
        transport.write(UnsafeRawBufferPointer(rebasing: raw[outOffset...]))
      }
      switch result {
      case .bytes(let n):
        outOffset += n
      case .wouldBlock:
        setWriteInterest(true)
        return
      case .eof, .failed:
        close(reason: Status(.unavailable, "connection lost while writing"))
        return
      }
    }
    setWriteInterest(false)
    if nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 {
      close(reason: Status(.unavailable, "connection closed"))
    }
  }

  private func setWriteInterest(_ on: Bool) {
    guard on != writeInterest else { return }
    writeInterest = on
    var events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
    if on { events |= EPOLLOUT.rawValue }
    loop.modify(fd: fd, events: events)
  }

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

  /// Closes the socket and the session; calls still open are cancelled for their hosts.
  func close(reason: Status) {
    guard !closed else { return }
    closed = true
    let open = calls.values
    calls.removeAll()
    for call in open { call.connectionLost(reason) }
    loop.unregister(fd: fd)
    transport.close()
    nghttp2_session_del(session)
    session = nil
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

  /// Returns flow-control credit to the peer for bytes the application has taken.
  func consume(streamID: Int32, bytes: Int) {
    guard bytes > 0, let session else { return }
    if nghttp2_session_consume(session, streamID, bytes) != 0 {
      nghttp2_session_consume_connection(session, bytes)
    }
  }
}

func nghttp2Error(_ code: Int32) -> String {
  String(cString: nghttp2_strerror(code))
}

/// The nghttp2 callback table and options, built once. Callbacks capture nothing: they reach
/// their connection through `user_data` and their call through the stream's user data.
struct NGHTTP2Callbacks: @unchecked Sendable {
  // @unchecked: both pointers are created once and never mutated afterwards; nghttp2 only reads.
  let server: OpaquePointer
  let options: OpaquePointer

  static let shared = NGHTTP2Callbacks()

  private init() {
    var cbs: OpaquePointer?
    nghttp2_session_callbacks_new(&cbs)
    var opt: OpaquePointer?
    nghttp2_option_new(&opt)
    nghttp2_option_set_no_auto_window_update(opt, 1)
    server = cbs!
    options = opt!

    nghttp2_session_callbacks_set_on_begin_headers_callback(server) { _, frame, ud in
      guard let frame, let ud else { return 0 }
      if frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue)
        && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
      {
        Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
          .beginCall(streamID: frame.pointee.hd.stream_id)
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(server) {
      _, frame, name, namelen, value, valuelen, _, ud in
      guard let frame, let ud, let name, let value,
        frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
      else { return 0 }
      let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
      conn.call(for: frame.pointee.hd.stream_id)?.receivedHeader(
        name: UnsafeBufferPointer(start: name, count: namelen),
        value: UnsafeBufferPointer(start: value, count: valuelen))
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(server) { _, frame, ud in
      guard let frame, let ud else { return 0 }
      let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
      let hd = frame.pointee.hd
      let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      switch Int(hd.type) {
      case Int(NGHTTP2_HEADERS.rawValue):
        guard let call = conn.call(for: hd.stream_id) else { return 0 }
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
          call.headersComplete()
        }
        if endStream { call.requestEnded() }
      case Int(NGHTTP2_DATA.rawValue):
        if endStream { conn.call(for: hd.stream_id)?.requestEnded() }
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(server) {
      _, _, streamID, data, len, ud in
      guard let ud else { return 0 }
      let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
      if let call = conn.call(for: streamID), let data {
        call.receivedData(UnsafeRawBufferPointer(start: data, count: len))
      } else {
        conn.consume(streamID: streamID, bytes: len)
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(server) { session, frame, ud in
      guard let frame, let ud else { return 0 }
      let hd = frame.pointee.hd
      if hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 && hd.stream_id > 0 {
        let conn = Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
        if let call = conn.call(for: hd.stream_id), !call.requestHasEnded {
          // The response is over but the client is still sending: tell it to stop.
          nghttp2_submit_rst_stream(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), hd.stream_id, NGHTTP2_NO_ERROR.rawValue)
        }
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(server) { _, streamID, errorCode, ud in
      guard let ud else { return 0 }
      Unmanaged<ServerConnection>.fromOpaque(ud).takeUnretainedValue()
        .endCall(streamID: streamID, errorCode: errorCode)
      return 0
    }
  }
}
