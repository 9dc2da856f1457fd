import CLinux
import Glibc

/// A listening socket, owned by one loop once the server starts. Accepted connections are
/// spread over the runtime's loops round-robin.
final class Listener: FDHandler {
  private(set) var fd: Int32
  let server: Server
  let isUnix: Bool
  let unixPath: String?
  private var nextLoop = 0

  init(fd: Int32, server: Server, address: ListenAddress) {
    self.fd = fd
    self.server = server
    if case .unix(let p) = address {
      isUnix = true
      unixPath = p
    } else if case .unixAbstract = address {
      isUnix = true
      unixPath = nil
    } else {
      isUnix = false
      unixPath = nil
    }
  }

  func handleEvents(_ events: UInt32) {
    let flags = swiftgrpc_sock_nonblock() | swiftgrpc_sock_cloexec()
    for _ in 0..<64 {
      var ss = sockaddr_storage()
      var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
      let cfd = withUnsafeMutablePointer(to: &ss) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept4(fd, $0, &len, flags) }
      }
      if cfd < 0 {
        let e = swiftgrpc_errno()
        if e == EINTR || e == ECONNABORTED { continue }
        return  // EAGAIN, or EMFILE & co: try again on the next readiness event.
      }
      if !isUnix {
        var one: Int32 = 1
        setsockopt(cfd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
      }
      let peer = withUnsafePointer(to: &ss) { peerDescription($0) }
      let loops = server.group.loops
      let loop = loops[nextLoop % loops.count]
      nextLoop &+= 1
      let server = self.server
      if !server.connectionOpened() {
        Glibc.close(cfd)
        continue
      }
      let accepted = loop.execute {
        ServerConnection.adopt(fd: cfd, peer: peer, server: server, loop: loop)
      }
      if !accepted {
        Glibc.close(cfd)
        server.connectionClosed()
      }
    }
  }

  func close() {
    if fd >= 0 {
      Glibc.close(fd)
      fd = -1
      if let p = unixPath { unlink(p) }
    }
  }
}
