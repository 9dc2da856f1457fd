/// One scheduled timer of a loop. Cancelling it (`EventLoop.cancel`) takes it out of the heap at
/// once, so a call that ends long before its deadline leaves nothing behind. Loop-bound.
final class LoopTimer {
  fileprivate(set) var deadline: Int64
  fileprivate let seq: UInt64
  /// Position in the heap; -1 once fired or cancelled.
  fileprivate var index = -1
  fileprivate var action: (() -> Void)?

  fileprivate init(deadline: Int64, seq: UInt64, action: @escaping () -> Void) {
    self.deadline = deadline
    self.seq = seq
    self.action = action
  }

  /// Whether the timer is still waiting to fire.
  var isPending: Bool { index >= 0 }
}

/// A binary min-heap of timers (deadline, then scheduling order) that supports removal.
struct TimerHeap {
  private var items: [LoopTimer] = []
  private var seq: UInt64 = 0

  var count: Int { items.count }
  var nextDeadline: Int64? { items.first?.deadline }

  @discardableResult
  mutating func schedule(at deadline: Int64, _ action: @escaping () -> Void) -> LoopTimer {
    seq &+= 1
    let timer = LoopTimer(deadline: deadline, seq: seq, action: action)
    timer.index = items.count
    items.append(timer)
    siftUp(items.count - 1)
    return timer
  }

  /// Removes `timer` if it is still pending; a fired or cancelled timer is left alone.
  mutating func cancel(_ timer: LoopTimer) {
    let i = timer.index
    guard i >= 0, i < items.count, items[i] === timer else { return }
    timer.index = -1
    timer.action = nil
    let last = items.removeLast()
    if i < items.count {
      items[i] = last
      last.index = i
      siftDown(i)
      siftUp(last.index)
    }
  }

  /// Removes and returns the action of the earliest timer due at `now`, if any.
  mutating func popDue(now: Int64) -> (() -> Void)? {
    guard let first = items.first, first.deadline <= now else { return nil }
    let action = first.action
    cancel(first)
    return action
  }

  private func less(_ a: Int, _ b: Int) -> Bool {
    items[a].deadline < items[b].deadline
      || (items[a].deadline == items[b].deadline && items[a].seq < items[b].seq)
  }

  private mutating func swapAt(_ a: Int, _ b: Int) {
    items.swapAt(a, b)
    items[a].index = a
    items[b].index = b
  }

  private mutating func siftUp(_ start: Int) {
    var i = start
    while i > 0 {
      let p = (i - 1) / 2
      guard less(i, p) else { return }
      swapAt(i, p)
      i = p
    }
  }

  private mutating func siftDown(_ start: Int) {
    var i = start
    while true {
      let l = 2 * i + 1
      let r = l + 1
      var m = i
      if l < items.count && less(l, m) { m = l }
      if r < items.count && less(r, m) { m = r }
      if m == i { return }
      swapAt(i, m)
      i = m
    }
  }
}
