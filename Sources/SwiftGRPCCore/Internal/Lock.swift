import CLinux
import Glibc

/// A pthread mutex with a condition variable on CLOCK_MONOTONIC. The primitive under every
/// piece of state shared across threads (loop queues, token tables, handle registry).
public final class Lock: @unchecked Sendable {
  // @unchecked: the pthread objects are heap-allocated once, never moved, and only touched
  // through pthread calls, which are thread-safe by definition.
  private let mutex: UnsafeMutablePointer<pthread_mutex_t>
  private let cond: UnsafeMutablePointer<pthread_cond_t>

  public init() {
    mutex = .allocate(capacity: 1)
    cond = .allocate(capacity: 1)
    swiftgrpc_mutex_init_adaptive(mutex)
    var attr = pthread_condattr_t()
    pthread_condattr_init(&attr)
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
    pthread_cond_init(cond, &attr)
    pthread_condattr_destroy(&attr)
  }

  deinit {
    pthread_cond_destroy(cond)
    pthread_mutex_destroy(mutex)
    cond.deallocate()
    mutex.deallocate()
  }

  public func lock() { pthread_mutex_lock(mutex) }
  public func unlock() { pthread_mutex_unlock(mutex) }

  @inline(__always)
  public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return try body()
  }

  /// Waits on the condition (lock held) until signalled or `deadline` (monotonic ns) passes.
  /// Returns false on timeout.
  public func wait(untilNanos deadline: Int64) -> Bool {
    if deadline == Int64.max {
      pthread_cond_wait(cond, mutex)
      return true
    }
    var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    return pthread_cond_timedwait(cond, mutex, &ts) == 0
  }

  public func broadcast() { pthread_cond_broadcast(cond) }
  /// Wakes one waiter.
  public func signal() { pthread_cond_signal(cond) }
}

/// State guarded by a `Lock`.
public final class Locked<State>: @unchecked Sendable {
  // @unchecked: `state` is only reached through `withLock`, under the mutex.
  public let lock = Lock()
  private var state: State

  public init(_ state: State) { self.state = state }

  /// The state, for callers that already hold `lock` (condition waits).
  func peek() -> State { state }

  /// Mutates the state; the caller already holds `lock`.
  public func withLockHeld<T>(_ body: (inout State) -> T) -> T { body(&state) }

  @inline(__always)
  public func withLock<T, E: Error>(_ body: (inout State) throws(E) -> T) throws(E) -> T {
    lock.lock()
    defer { lock.unlock() }
    return try body(&state)
  }
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC): the clock of deadlines.
@inline(__always)
public func monotonicNanos() -> Int64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
