import CLinux
import Glibc

/// The outcome of one read or write on a transport.
enum IOResult {
  case bytes(Int)
  case wouldBlock
  case eof
  case failed(Int32)
}

/// The byte I/O under an HTTP/2 session: a plaintext socket, or TLS on OpenSSL (`TLSTransport`),
/// without touching the protocol code above it.
protocol ByteTransport: AnyObject {
  var fd: Int32 { get }
  /// Whether a handshake must complete before bytes flow (TLS).
  var needsHandshake: Bool { get }
  /// One non-blocking step of the handshake.
  func handshakeStep() -> HandshakeStep
  /// The connection's auth properties (gRPC's auth context), once the handshake is done.
  func authProperties() -> [MetadataEntry]
  func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult
  func write(_ buffer: UnsafeRawBufferPointer) -> IOResult
  /// Sends FIN: no more writes; reads go on.
  func shutdownWrite()
  func close()
}

extension ByteTransport {
  var needsHandshake: Bool { false }
  func handshakeStep() -> HandshakeStep { .done }
  func authProperties() -> [MetadataEntry] { [MetadataEntry("transport_security_type", "insecure")] }
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
      FileDescriptors.close(fd)
      fd = -1
    }
  }
}

/// An in-memory transport: reads what `feed` gave it, keeps what is written. For driving a
/// connection without a socket (tests, fuzz targets); its fd is -1.
final class MemoryTransport: ByteTransport {
  private var input: [UInt8] = []
  private var offset = 0
  private(set) var output: [UInt8] = []
  private(set) var isClosed = false
  /// Whether a read past the input is the end of the stream (else it would block).
  var endOfInput = false

  var fd: Int32 { -1 }

  func feed(_ bytes: some Collection<UInt8>) { input += bytes }

  var unread: Int { input.count - offset }

  func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
    if isClosed { return .failed(EBADF) }
    let n = min(buffer.count, input.count - offset)
    if n == 0 { return endOfInput ? .eof : .wouldBlock }
    input.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
    offset += n
    if offset == input.count {
      input.removeAll(keepingCapacity: true)
      offset = 0
    }
    return .bytes(n)
  }

  func write(_ buffer: UnsafeRawBufferPointer) -> IOResult {
    if isClosed { return .failed(EBADF) }
    output += buffer
    return .bytes(buffer.count)
  }

  func takeOutput() -> [UInt8] {
    defer { output.removeAll(keepingCapacity: true) }
    return output
  }

  func shutdownWrite() {}

  func close() { isClosed = true }
}
