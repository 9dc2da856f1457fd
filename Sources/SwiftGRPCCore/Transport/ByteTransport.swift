import CLinux
import Glibc

/// The outcome of one read or write on a transport.
enum IOResult {
  case bytes(Int)
  case wouldBlock
  case eof
  case failed(Int32)
}

/// The byte I/O under an HTTP/2 session: plaintext sockets now, TLS (OpenSSL) later, without
/// touching the protocol code above it.
protocol ByteTransport: AnyObject {
  var fd: Int32 { get }
  func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult
  func write(_ buffer: UnsafeRawBufferPointer) -> IOResult
  /// Sends FIN: no more writes; reads go on.
  func shutdownWrite()
  func close()
}

/// A plaintext non-blocking socket.
final class SocketTransport: ByteTransport {
  private(set) var fd: Int32

  init(fd: Int32) { self.fd = fd }

  func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
    while true {
      let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
      if n > 0 { return .bytes(n) }
      if n == 0 { return .eof }
      let e = swiftgrpc_errno()
      if e == EINTR { continue }
      if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
      return .failed(e)
    }
  }

  func write(_ buffer: UnsafeRawBufferPointer) -> IOResult {
    while true {
      let n = send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
      if n >= 0 { return .bytes(n) }
      let e = swiftgrpc_errno()
      if e == EINTR { continue }
      if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
      return .failed(e)
    }
  }

  func shutdownWrite() {
    if fd >= 0 { _ = shutdown(fd, Int32(SHUT_WR)) }
  }

  func close() {
    if fd >= 0 {
      Glibc.close(fd)
      fd = -1
    }
  }
}
