import CLinux
import Glibc

/// A channel target, parsed: "host:port" and "dns:[//authority/]host:port" (resolved with
/// getaddrinfo), "ipv4:a.b.c.d:port[,...]", "ipv6:[addr]:port[,...]", "unix:/path",
/// "unix:///path", "unix-abstract:name".
public enum ClientTarget: Equatable, Sendable {
  case dns(host: String, port: Int)
  case literals([String])
  case unix(path: String)
  case unixAbstract(name: String)

  /// The port gRPC assumes when a DNS target names none.
  static let defaultPort = 443

  /// Parses a target; on failure returns why.
  public static func parse(_ s: String) -> Result<ClientTarget, TargetError> {
    if s.isEmpty { return .failure(TargetError("target is empty")) }
    if s.hasPrefix("unix:") {
      var path = String(s.dropFirst(5))
      if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
      guard !path.isEmpty, path.utf8.count <= 107 else {
        return .failure(TargetError("unix socket path is empty or longer than 107 bytes"))
      }
      return .success(.unix(path: path))
    }
    if s.hasPrefix("unix-abstract:") {
      let name = String(s.dropFirst(14))
      guard !name.isEmpty, name.utf8.count <= 106 else {
        return .failure(TargetError("abstract socket name is empty or longer than 106 bytes"))
      }
      return .success(.unixAbstract(name: name))
    }
    for (scheme, family) in [("ipv4:", AF_INET), ("ipv6:", AF_INET6)] where s.hasPrefix(scheme) {
      var list = [String]()
      for part in s.dropFirst(scheme.count).split(separator: ",", omittingEmptySubsequences: false) {
        guard let (host, port) = splitHostPort(part), let port else {
          return .failure(TargetError("'\(part)' is not an address:port"))
        }
        guard isNumeric(host, family: family) else {
          return .failure(TargetError("'\(host)' is not a numeric \(scheme.dropLast()) address"))
        }
        list.append(family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)")
      }
      return .success(.literals(list))
    }
    var rest = Substring(s)
    if rest.hasPrefix("dns:") {
      rest = rest.dropFirst(4)
      if rest.hasPrefix("//") {
        // dns://[authority]/host:port — the DNS server authority is not supported; skip it.
        rest = rest.dropFirst(2)
        guard let slash = rest.firstIndex(of: "/") else {
          return .failure(TargetError("dns target '\(s)' has no /host:port"))
        }
        rest = rest[rest.index(after: slash)...]
      }
    } else if rest.contains("://") {
      return .failure(TargetError("unsupported scheme in target '\(s)' (dns, ipv4, ipv6, unix)"))
    }
    guard let (host, port) = splitHostPort(rest), !host.isEmpty else {
      return .failure(TargetError("malformed target '\(s)' (expected host:port)"))
    }
    return .success(.dns(host: host, port: port ?? defaultPort))
  }

  /// The `:authority` for calls on this target.
  var authority: String {
    switch self {
    case .dns(let host, let port):
      return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    case .literals(let list): return list.first ?? "localhost"
    case .unix, .unixAbstract: return "localhost"
    }
  }

  /// The host name a secure channel verifies the server's certificate against (and sends as
  /// SNI): the DNS host, the first literal address, or "localhost" for Unix sockets.
  var host: String {
    switch self {
    case .dns(let host, _): return host
    case .literals(let list):
      guard let first = list.first else { return "localhost" }
      if first.hasPrefix("["), let close = first.firstIndex(of: "]") {
        return String(first[first.index(after: first.startIndex)..<close])
      }
      return String(first.prefix { $0 != ":" })
    case .unix, .unixAbstract: return "localhost"
    }
  }

  /// Whether resolving needs a name lookup (a blocking call, run off the loops): not for
  /// numeric addresses.
  var needsDNS: Bool {
    guard case .dns(let host, _) = self else { return false }
    return !isNumeric(host, family: AF_INET) && !isNumeric(host, family: AF_INET6)
  }

  /// Resolves to socket addresses. Blocking for `.dns`.
  func resolve() -> Result<[ResolvedAddress], TargetError> {
    switch self {
    case .dns(let host, let port):
      return ResolvedAddress.lookup(host: host, port: port, numericOnly: false)
    case .literals(let list):
      var out = [ResolvedAddress]()
      for item in list {
        guard let (host, port) = splitHostPort(Substring(item)), let port else { continue }
        switch ResolvedAddress.lookup(host: host, port: port, numericOnly: true) {
        case .success(let a): out += a
        case .failure(let e): return .failure(e)
        }
      }
      return .success(out)
    case .unix(let path):
      return .success([ResolvedAddress(unixPath: path, abstract: false)])
    case .unixAbstract(let name):
      return .success([ResolvedAddress(unixPath: name, abstract: true)])
    }
  }
}

public struct TargetError: Error, Equatable, Sendable, CustomStringConvertible {
  public let description: String
  init(_ d: String) { description = d }
}

/// Splits "host:port", "[v6]:port", "host" (port nil). Returns nil if malformed.
private func splitHostPort(_ s: Substring) -> (String, Int?)? {
  if s.hasPrefix("[") {
    guard let close = s.firstIndex(of: "]") else { return nil }
    let host = String(s[s.index(after: s.startIndex)..<close])
    let after = s[s.index(after: close)...]
    if after.isEmpty { return (host, nil) }
    guard after.hasPrefix(":"), let port = parsePort(after.dropFirst()) else { return nil }
    return (host, port)
  }
  guard let colon = s.lastIndex(of: ":") else { return s.isEmpty ? nil : (String(s), nil) }
  let host = s[..<colon]
  if host.contains(":") { return nil }  // a bare IPv6 address needs brackets
  guard let port = parsePort(s[s.index(after: colon)...]) else { return nil }
  return (String(host), port)
}

private func parsePort(_ s: Substring) -> Int? {
  guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let p = Int(s), p <= 65535
  else { return nil }
  return p
}

private func isNumeric(_ host: String, family: Int32) -> Bool {
  var buf = in6_addr()
  return inet_pton(family, host, &buf) == 1
}

/// One address a subchannel connects to.
public struct ResolvedAddress: Sendable, Equatable {
  var storage: sockaddr_storage
  var length: socklen_t
  public let description: String
  let isUnix: Bool

  init(unixPath: String, abstract: Bool) {
    var sun = sockaddr_un()
    sun.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(unixPath.utf8)
    withUnsafeMutableBytes(of: &sun.sun_path) { raw in
      let offset = abstract ? 1 : 0
      for (i, b) in bytes.enumerated() where i + offset < raw.count { raw[i + offset] = b }
    }
    storage = sockaddr_storage()
    withUnsafeMutableBytes(of: &storage) { dst in
      withUnsafeBytes(of: sun) { src in dst.copyMemory(from: src) }
    }
    length = socklen_t(
      MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 1 : 0))
    description = (abstract ? "unix-abstract:" : "unix:") + unixPath
    isUnix = true
  }

  init(storage: sockaddr_storage, length: socklen_t) {
    self.storage = storage
    self.length = length
    var s = storage
    description = peerDescription(&s)
    isUnix = false
  }

  static func lookup(host: String, port: Int, numericOnly: Bool)
    -> Result<[ResolvedAddress], TargetError>
  {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_NUMERICSERV | (numericOnly ? AI_NUMERICHOST : 0)
    var res: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &res)
    guard rc == 0 else {
      return .failure(TargetError("resolving '\(host)': \(String(cString: gai_strerror(rc)))"))
    }
    defer { freeaddrinfo(res) }
    var out = [ResolvedAddress]()
    var p = res
    while let ai = p {
      var ss = sockaddr_storage()
      withUnsafeMutableBytes(of: &ss) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: ai.pointee.ai_addr, count: Int(ai.pointee.ai_addrlen)))
      }
      let a = ResolvedAddress(storage: ss, length: ai.pointee.ai_addrlen)
      if !out.contains(a) { out.append(a) }
      p = ai.pointee.ai_next
    }
    if out.isEmpty { return .failure(TargetError("'\(host)' resolved to no address")) }
    return .success(out)
  }

  public static func == (a: ResolvedAddress, b: ResolvedAddress) -> Bool {
    a.description == b.description
  }
}
