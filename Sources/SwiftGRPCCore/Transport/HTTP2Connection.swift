import CLinux
import CNGHTTP2
import Glibc

/// What server and client connections share: a byte transport below an nghttp2 session, the
/// read loop feeding `nghttp2_session_mem_recv`, the write loop draining
/// `nghttp2_session_mem_send`, and epoll write interest. Owned by one loop, touched only there.
class HTTP2Connection: FDHandler {
  let loop: EventLoop
  let transport: ByteTransport
  let fd: Int32
  var session: OpaquePointer?
  var isDirty = false
  private var out: [UInt8] = []
  private var outOffset = 0
  private var writeInterest = false
  private(set) var closed = false

  init(loop: EventLoop, transport: ByteTransport) {
    self.loop = loop
    self.transport = transport
    self.fd = transport.fd
    out.reserveCapacity(65536)
  }

  /// The status given to calls when the peer closes the socket.
  var peerClosedStatus: Status { Status(.unavailable, "connection closed by the peer") }

  /// Called once, when the connection closes, after the session is gone. Subclasses end their
  /// calls here.
  func didClose(reason: Status) {}

  // MARK: - I/O

  func handleEvents(_ events: UInt32) {
    if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue)
      != 0
    {
      readAvailable()
      if closed { return }
    }
    // Answers given inline while we parsed go out in the same write.
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
        close(reason: peerClosedStatus)
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

  /// Closes the socket and the session, then lets the subclass end its calls.
  func close(reason: Status) {
    guard !closed else { return }
    closed = true
    loop.unregister(fd: fd)
    transport.close()
    nghttp2_session_del(session)
    session = nil
    didClose(reason: reason)
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
