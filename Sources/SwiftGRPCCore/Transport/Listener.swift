import CLinux
import Glibc

/// A listening socket, owned by one loop once the server starts. Accepted connections are
/// spread over the runtime's loops round-robin. Out of file descriptors (or kernel memory), it
/// stops listening for a back-off that doubles from 10 ms to 1 s, instead of spinning on a
/// socket that stays readable.
final class Listener: FDHandler {
  private(set) var fd: Int32
  let server: Server
  /// TLS settings of the connections it accepts (nil: plaintext).
  let credentials: ServerCredentials?
  let isUnix: Bool
  let unixPath: String?
  private var nextLoop = 0
  /// The loop it is registered with (set by `register`).
  private var loop: EventLoop?
  private var backoffNanos: Int64 = 0
  private var pauseTimer: LoopTimer?
  static let minBackoffNanos: Int64 = 10_000_000
  static let maxBackoffNanos: Int64 = 1_000_000_000

  init(fd: Int32, server: Server, address: ListenAddress, credentials: ServerCredentials?) {
    self.fd = fd
    self.server = server
    self.credentials = credentials
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

  /// Starts accepting on `loop` (loop thread).
  func register(on loop: EventLoop) {
    self.loop = loop
    loop.register(fd: fd, events: EPOLLIN.rawValue, handler: self)
  }

  func handleEvents(_ events: UInt32) {
    let flags = swiftgrpc_sock_nonblock() | swiftgrpc_sock_cloexec()
    for _ in 0..<64 {
      var ss = sockaddr_storage()
      var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
      let cfd = FileDescriptors.track(withUnsafeMutablePointer(to: &ss) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept4(fd, $0, &len, flags) }
      })
      if cfd < 0 {
        let e = swiftgrpc_errno()
        if e == EINTR || e == ECONNABORTED { continue }
        if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM { pause() }
        return  // EAGAIN: nothing more to accept now
      }
      backoffNanos = 0
      if !isUnix {
        var one: Int32 = 1
        setsockopt(cfd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
      }
      let peer = withUnsafePointer(to: &ss) { peerDescription($0) }
      let loops = server.group.loops
      let loop = loops[nextLoop % loops.count]
      nextLoop &+= 1
      let server = self.server
      let credentials = self.credentials
      if !server.connectionOpened() {
        FileDescriptors.close(cfd)
        continue
      }
      let accepted = loop.execute {
        ServerConnection.adopt(fd: cfd, peer: peer, server: server, loop: loop, credentials: credentials)
      }
      if !accepted {
        FileDescriptors.close(cfd)
        server.connectionClosed()
      }
    }
  }

  /// Stops listening for the back-off, then listens again.
  private func pause() {
    guard let loop, fd >= 0, pauseTimer == nil else { return }
    backoffNanos = backoffNanos == 0 ? Listener.minBackoffNanos : min(2 * backoffNanos, Listener.maxBackoffNanos)
    loop.modify(fd: fd, events: 0)
    pauseTimer = loop.schedule(after: backoffNanos) { [weak self] in
      guard let self else { return }
      self.pauseTimer = nil
      if self.fd >= 0 { loop.modify(fd: self.fd, events: EPOLLIN.rawValue) }
    }
  }

  /// Closes the socket (loop thread, after `unregister`).
  func close() {
    loop?.cancel(pauseTimer)
    pauseTimer = nil
    if fd >= 0 {
      FileDescriptors.close(fd)
      fd = -1
      if let p = unixPath { unlink(p) }
    }
  }
}
