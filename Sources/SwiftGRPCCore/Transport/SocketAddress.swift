import CLinux
import Glibc

/// A listen address: "host:port", "[v6]:port", "unix:/path", "unix-abstract:name".
public enum ListenAddress: Equatable, Sendable {
  case inet(host: String, port: Int)
  case unix(path: String)
  case unixAbstract(name: String)

  public static func parse(_ s: String) -> ListenAddress? {
    if s.hasPrefix("unix:") {
      var path = String(s.dropFirst(5))
      if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
      return path.isEmpty || path.utf8.count > 107 ? nil : .unix(path: path)
    }
    if s.hasPrefix("unix-abstract:") {
      let name = String(s.dropFirst(14))
      return name.isEmpty || name.utf8.count > 106 ? nil : .unixAbstract(name: name)
    }
    var rest = Substring(s)
    if rest.hasPrefix("dns:///") { rest = rest.dropFirst(7) }
    let host: Substring
    let portText: Substring
    if rest.hasPrefix("[") {
      guard let close = rest.firstIndex(of: "]") else { return nil }
      host = rest[rest.index(after: rest.startIndex)..<close]
      let after = rest[rest.index(after: close)...]
      guard after.hasPrefix(":") else { return nil }
      portText = after.dropFirst()
    } else {
      guard let colon = rest.lastIndex(of: ":") else { return nil }
      host = rest[..<colon]
      portText = rest[rest.index(after: colon)...]
      if host.contains(":") { return nil }
    }
    guard let port = Int(portText), port >= 0, port <= 65535 else { return nil }
    return .inet(host: host.isEmpty ? "0.0.0.0" : String(host), port: port)
  }
}

/// Formats a peer address the way gRPC does: "ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:/p".
func peerDescription(_ storage: UnsafePointer<sockaddr_storage>) -> String {
  let family = Int32(storage.pointee.ss_family)
  var buf = [CChar](repeating: 0, count: 64)
  switch family {
  case AF_INET:
    return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
      var addr = sin.pointee.sin_addr
      inet_ntop(AF_INET, &addr, &buf, 64)
      let ip = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      return "ipv4:\(ip):\(UInt16(bigEndian: sin.pointee.sin_port))"
    }
  case AF_INET6:
    return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
      var addr = sin.pointee.sin6_addr
      inet_ntop(AF_INET6, &addr, &buf, 64)
      let ip = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      return "ipv6:[\(ip)]:\(UInt16(bigEndian: sin.pointee.sin6_port))"
    }
  case AF_UNIX:
    return storage.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { sun in
      withUnsafeBytes(of: sun.pointee.sun_path) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return "unix:" + String(decoding: bytes, as: UTF8.self)
      }
    }
  default:
    return "unknown"
  }
}

/// Creates a bound, listening, non-blocking socket. Returns the fd and the bound port.
/// `reusePort`: SO_REUSEPORT, so that several servers (processes) can listen on one port and
/// the kernel spreads connections over them.
func makeListeningSocket(_ address: ListenAddress, reusePort: Bool = false) throws(SystemError)
  -> (fd: Int32, port: Int)
{
  let flags = swiftgrpc_sock_nonblock() | swiftgrpc_sock_cloexec()
  switch address {
  case .inet(let host, let port):
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
    var res: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &res)
    guard rc == 0, let first = res else {
      throw SystemError("getaddrinfo(\(host)): \(String(cString: gai_strerror(rc)))", errno: 0)
    }
    defer { freeaddrinfo(res) }
    let ai = first.pointee
    let fd = FileDescriptors.track(socket(ai.ai_family, ai.ai_socktype | flags, 0))
    if fd < 0 { throw SystemError("socket") }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
    if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4) }
    if bind(fd, ai.ai_addr, ai.ai_addrlen) != 0 {
      let e = SystemError("bind(\(host):\(port))")
      FileDescriptors.close(fd)
      throw e
    }
    if listen(fd, 1024) != 0 {
      let e = SystemError("listen")
      FileDescriptors.close(fd)
      throw e
    }
    var ss = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let bound = withUnsafeMutablePointer(to: &ss) { p -> Int in
      _ = p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
      if Int32(p.pointee.ss_family) == AF_INET6 {
        return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
          Int(UInt16(bigEndian: $0.pointee.sin6_port))
        }
      }
      return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
        Int(UInt16(bigEndian: $0.pointee.sin_port))
      }
    }
    return (fd, bound)
  case .unix(let path), .unixAbstract(let path):
    let abstract: Bool
    if case .unixAbstract = address { abstract = true } else { abstract = false }
    let fd = FileDescriptors.track(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | flags, 0))
    if fd < 0 { throw SystemError("socket") }
    var unixAddress = ResolvedAddress(unixPath: path, abstract: abstract)
    if !abstract { unlink(path) }
    let rc = withUnsafePointer(to: &unixAddress.storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, unixAddress.length) }
    }
    if rc != 0 {
      let e = SystemError("bind(unix:\(path))")
      FileDescriptors.close(fd)
      throw e
    }
    if listen(fd, 1024) != 0 {
      let e = SystemError("listen")
      FileDescriptors.close(fd)
      throw e
    }
    return (fd, 0)
  }
}
