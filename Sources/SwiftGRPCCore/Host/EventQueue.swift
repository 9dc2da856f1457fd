/// A multi-producer, multi-consumer blocking queue: the pull model's event queue. Loop threads
/// push; host threads wait in `next` with a timeout.
public final class EventQueue<Element>: @unchecked Sendable {
  // @unchecked: all state is behind `lock`.
  public enum NextResult {
    case element(Element)
    case timedOut
    case shutDown
  }

  private let lock = Lock()
  private var items: [Element] = []
  private var head = 0
  private var isShutDown = false
  private let onDrop: (Element) -> Void

  /// - Parameter onDrop: called (outside the lock) for elements pushed after shutdown and for
  ///   those still queued when the queue is drained by `close`.
  public init(onDrop: @escaping (Element) -> Void = { _ in }) {
    self.onDrop = onDrop
  }

  /// Pushes an element; returns false (and drops it) if the queue is shut down.
  @discardableResult
  public func push(_ element: Element) -> Bool {
    lock.lock()
    if isShutDown {
      lock.unlock()
      onDrop(element)
      return false
    }
    items.append(element)
    lock.unlock()
    lock.signal()  // one element, one consumer: no thundering herd of host threads
    return true
  }

  /// Waits until `deadline` (monotonic ns; Int64.max: forever) for the next element.
  public func next(deadline: Int64) -> NextResult {
    lock.lock()
    defer { lock.unlock() }
    while head == items.count {
      if isShutDown { return .shutDown }
      if deadline <= monotonicNanos() { return .timedOut }
      _ = lock.wait(untilNanos: deadline)
    }
    let e = items[head]
    head += 1
    if head == items.count {
      items.removeAll(keepingCapacity: true)
      head = 0
    } else if head > 1024 && head * 2 > items.count {
      items.removeFirst(head)
      head = 0
    }
    return .element(e)
  }

  /// Stops accepting elements; waiting consumers get the rest, then `.shutDown`.
  public func shutdown() {
    lock.withLock { isShutDown = true }
    lock.broadcast()
  }

  /// Shuts down and drops every queued element.
  public func close() {
    let rest: [Element] = lock.withLock {
      isShutDown = true
      let r = Array(items[head...])
      items.removeAll()
      head = 0
      return r
    }
    lock.broadcast()
    for e in rest { onDrop(e) }
  }

  public var count: Int { lock.withLock { items.count - head } }
}
