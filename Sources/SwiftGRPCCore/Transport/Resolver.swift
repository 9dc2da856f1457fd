import Glibc

/// Runs blocking name resolution (getaddrinfo) off the loops, on one thread the runtime owns:
/// started on first use and joined by `shutdown`, so no library thread outlives the runtime (and
/// unloading the library after `swiftgrpc_runtime_destroy` is safe). Jobs run one at a time, in
/// order; jobs still queued at shutdown are dropped.
final class Resolver: @unchecked Sendable {
  // @unchecked: `state` is locked; `thread` is written once under the lock, read after join.
  private struct State {
    var jobs: [@Sendable () -> Void] = []
    var started = false
    var stopping = false
  }

  private let state = Locked(State())
  private var thread = pthread_t()

  /// Queues `job`. Returns false once shut down (or if no thread could be started).
  @discardableResult
  func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
    let start = state.withLock { s -> Bool? in
      if s.stopping { return nil }
      s.jobs.append(job)
      defer { s.started = true }
      return !s.started
    }
    guard let start else { return false }
    if !start {
      state.lock.signal()
      return true
    }
    let box = Unmanaged.passRetained(self)
    let rc = pthread_create(&thread, nil, { arg in
      Unmanaged<Resolver>.fromOpaque(arg!).takeRetainedValue().run()
      return nil
    }, box.toOpaque())
    if rc != 0 {
      box.release()
      state.withLock { s in
        s.started = false
        s.jobs.removeAll()
      }
      return false
    }
    return true
  }

  private func run() {
    while true {
      state.lock.lock()
      while state.peek().jobs.isEmpty && !state.peek().stopping {
        _ = state.lock.wait(untilNanos: Time.never)
      }
      if state.peek().stopping {
        state.lock.unlock()
        return
      }
      let job = state.withLockHeld { $0.jobs.removeFirst() }
      state.lock.unlock()
      job()
    }
  }

  /// Drops queued jobs, waits for the one running (if any) and joins the thread.
  func shutdown() {
    let started = state.withLock { s -> Bool in
      s.stopping = true
      s.jobs.removeAll()
      return s.started
    }
    state.lock.broadcast()
    if started { pthread_join(thread, nil) }
  }
}
