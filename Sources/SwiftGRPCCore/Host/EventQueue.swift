import CLinux
import Glibc
import Synchronization

/// A multi-producer, multi-consumer blocking queue: the pull model's event queue. Loop threads
/// push; host threads wait in `next` with a timeout, or watch `readinessFD` from an event loop
/// of their own and take with a zero timeout.
public final class EventQueue<Element>: @unchecked Sendable {
  // @unchecked: all state is behind `lock`.
  public enum NextResult {
    case element(Element)
    case timedOut
    case shutDown
  }

  private let lock = Lock()
  /// Elements with their retraction key (0: not retractable).
  private var items: [(element: Element, key: UInt64)] = []
  private var head = 0
  /// Keys of retractable elements still queued, and of those taken back.
  private var retractable: Set<UInt64> = []
  private var retracted: Set<UInt64> = []
  private var isShutDown = false
  /// The eventfd of `readinessFD` (-1 until asked for): written when an element lands on an
  /// empty queue and at shutdown.
  private var readyFD: Int32 = -1
  private let onDrop: (Element) -> Void
  /// Elements queued (written under `lock`, read without it by a consumer spinning in `next`).
  private let queuedCount = Atomic<Int>(0)
  /// How long a consumer that finds the queue empty spins (yielding the CPU) before it sleeps:
  /// waking a sleeping thread costs far more than the hand-off itself on virtual machines.
  public static var spinNanos: Int64 {
    let us = getenv("SWIFTGRPC_QUEUE_SPIN_US").flatMap { Int64(String(cString: $0)) } ?? 50
    return Swift.max(0, Swift.min(us, 10_000)) * 1000
  }
  private let spinNanos = EventQueue.spinNanos

  /// - Parameter onDrop: called (outside the lock) for elements pushed after shutdown, for those
  ///   taken back with `retract`, and for those still queued when the queue is drained by `close`.
  public init(onDrop: @escaping (Element) -> Void = { _ in }) {
    self.onDrop = onDrop
  }

  deinit {
    if readyFD >= 0 { FileDescriptors.close(readyFD) }
  }

  /// Pushes an element; returns false (and drops it) if the queue is shut down. A non-zero
  /// `retractionKey` lets `retract` take it back while it is still queued.
  @discardableResult
  public func push(_ element: Element, retractionKey: UInt64 = 0) -> Bool {
    lock.lock()
    if isShutDown {
      lock.unlock()
      onDrop(element)
      return false
    }
    let wasEmpty = head == items.count
    items.append((element, retractionKey))
    queuedCount.store(items.count - head, ordering: .releasing)
    if retractionKey != 0 { retractable.insert(retractionKey) }
    // Under the lock: `close` closes the descriptor under it, so the number is never stale.
    if wasEmpty && readyFD >= 0 { signalReady() }
    lock.unlock()
    lock.signal()  // one element, one consumer: no thundering herd of host threads
    return true
  }

  /// Takes back the element pushed with `key` if no consumer has taken it yet. Returns whether
  /// it did; the element is then never returned by `next` and is dropped.
  public func retract(_ key: UInt64) -> Bool {
    lock.withLock {
      guard retractable.remove(key) != nil else { return false }
      retracted.insert(key)
      return true
    }
  }

  /// Waits until `deadline` (monotonic ns; Int64.max: forever) for the next element.
  public func next(deadline: Int64) -> NextResult {
    var dropped: [Element] = []
    defer { for e in dropped { onDrop(e) } }
    lock.lock()
    defer { lock.unlock() }
    return waitLocked(deadline: deadline, dropped: &dropped)
  }

  /// Waits until `deadline` for the first element, then takes the ones already queued behind
  /// it without waiting, `max` in all, appending them to `taken`: one wake-up for a batch.
  /// `.element` carries the first of them.
  @discardableResult
  public func nextBatch(deadline: Int64, max: Int, into taken: inout [Element]) -> NextResult {
    var dropped: [Element] = []
    defer { for e in dropped { onDrop(e) } }
    lock.lock()
    defer { lock.unlock() }
    let first = waitLocked(deadline: deadline, dropped: &dropped)
    guard case .element(let e) = first else { return first }
    taken.append(e)
    for _ in 1..<Swift.max(1, max) {
      guard let more = popLocked(dropped: &dropped) else { break }
      taken.append(more)
    }
    return first
  }

  /// Under the lock: the next element, waiting for it until `deadline`.
  private func waitLocked(deadline: Int64, dropped: inout [Element]) -> NextResult {
    var spun = false
    while true {
      if let e = popLocked(dropped: &dropped) { return .element(e) }
      if isShutDown { return .shutDown }
      let now = monotonicNanos()
      if deadline <= now { return .timedOut }
      if !spun && spinNanos > 0 {
        // Once per wait: spin a little (outside the lock, yielding so that a producer sharing
        // this core runs) before sleeping on the condition.
        spun = true
        lock.unlock()
        let until = Swift.min(deadline, now &+ spinNanos)
        while queuedCount.load(ordering: .acquiring) == 0 && monotonicNanos() < until { sched_yield() }
        lock.lock()
        continue
      }
      _ = lock.wait(untilNanos: deadline)
    }
  }

  /// Under the lock: the next element that was not taken back, if any is queued (the taken
  /// back ones go to `dropped`).
  private func popLocked(dropped: inout [Element]) -> Element? {
    defer { queuedCount.store(items.count - head, ordering: .releasing) }
    while head < items.count {
      let (e, key) = items[head]
      head += 1
      if head == items.count {
        items.removeAll(keepingCapacity: items.capacity <= 4096)
        head = 0
      } else if head > 1024 && head * 2 > items.count {
        items.removeFirst(head)
        head = 0
      }
      if key != 0 {
        if retracted.remove(key) != nil {
          dropped.append(e)
          continue
        }
        retractable.remove(key)
      }
      return e
    }
    return nil
  }

  /// A descriptor that becomes readable when an element is pushed onto the empty queue, and at
  /// shutdown: for a consumer that runs its own event loop. Its protocol: when readable, read
  /// it (8 bytes; that clears it), then take with a zero timeout until `.timedOut` or
  /// `.shutDown`. Created on first use, the same one after; closed by `close`.
  public func readinessFD() throws(SystemError) -> Int32 {
    lock.lock()
    defer { lock.unlock() }
    if readyFD < 0 {
      let fd = FileDescriptors.track(eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)))
      if fd < 0 { throw SystemError("eventfd") }
      readyFD = fd
      // Elements queued (or a shutdown) before anyone watched: readable at once.
      if head < items.count || isShutDown { signalReady() }
    }
    return readyFD
  }

  /// Under the lock: makes `readyFD` readable (a full counter is readable already).
  private func signalReady() {
    var one: UInt64 = 1
    _ = write(readyFD, &one, 8)
  }

  /// Stops accepting elements; waiting consumers get the rest, then `.shutDown`.
  public func shutdown() {
    lock.withLock {
      isShutDown = true
      if readyFD >= 0 { signalReady() }
    }
    lock.broadcast()
  }

  /// Shuts down and drops every queued element.
  public func close() {
    let rest: [Element] = lock.withLock {
      isShutDown = true
      let r = items[head...].map(\.element)
      items.removeAll()
      head = 0
      queuedCount.store(0, ordering: .releasing)
      retractable.removeAll()
      retracted.removeAll()
      if readyFD >= 0 {
        FileDescriptors.close(readyFD)
        readyFD = -1
      }
      return r
    }
    lock.broadcast()
    for e in rest { onDrop(e) }
  }

  public var count: Int { lock.withLock { items.count - head } }
}
