import Glibc

/// The runtime's event-loop threads, and its resolver thread. Loop i owns the tokens whose low
/// byte is i.
public final class EventLoopGroup: Sendable {
  public let loops: [EventLoop]
  let resolver: Resolver

  /// Starts `threads` loops (0: one per core, at most 64).
  public init(threads: Int) throws(SystemError) {
    let n = threads > 0 ? threads : max(1, min(64, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    let resolver = Resolver()
    self.resolver = resolver
    var loops = [EventLoop]()
    for i in 0..<n { loops.append(try EventLoop(index: i, resolver: resolver)) }
    self.loops = loops
    for (i, loop) in loops.enumerated() {
      do {
        try loop.start()
      } catch {
        for started in loops[..<i] {
          started.stop()
          started.join()
        }
        throw error
      }
    }
  }

  /// A group of loops that are not started (driven by hand, by tests and fuzz targets).
  init(unstarted loops: [EventLoop]) {
    resolver = loops.first?.resolver ?? Resolver()
    self.loops = loops
  }

  /// Whether the calling thread is one of this group's loops.
  public var isLoopThread: Bool { loops.contains { $0.inLoop } }

  /// The loop that owns `token`, if any.
  func loop(for token: UInt64) -> EventLoop? {
    let i = Int(token & 0xFF)
    return i < loops.count ? loops[i] : nil
  }

  /// Runs `body` on every loop and waits until all have run it. Not from a loop thread.
  public func onEveryLoopAndWait(_ body: @escaping (EventLoop) -> Void) {
    let done = Locked(0)
    for loop in loops {
      let accepted = loop.execute {
        body(loop)
        done.withLock { $0 += 1 }
        done.lock.broadcast()
      }
      if !accepted { done.withLock { $0 += 1 } }
    }
    done.lock.lock()
    while done.peek() < loops.count { _ = done.lock.wait(untilNanos: Int64.max) }
    done.lock.unlock()
  }

  /// Stops and joins every loop thread, then the resolver thread: once it returns, no thread of
  /// this group runs. Not from a loop thread.
  public func shutdown() {
    for loop in loops { loop.stop() }
    for loop in loops { loop.join() }
    resolver.shutdown()
  }
}
