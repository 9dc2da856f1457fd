import Glibc
import Testing

@testable import SwiftGRPCCore

@Suite struct EventQueueTests {
  @Test func deliversInOrderAndTimesOut() {
    let q = EventQueue<Int>()
    for i in 0..<5 { q.push(i) }
    for i in 0..<5 {
      guard case .element(let e) = q.next(deadline: Int64.max) else { Issue.record("no element"); return }
      #expect(e == i)
    }
    guard case .timedOut = q.next(deadline: monotonicNanos() + 10_000_000) else {
      Issue.record("expected a timeout")
      return
    }
  }

  @Test func aWaitingConsumerGetsWhatIsPushedWhileItSpinsOrSleeps() {
    // The consumer spins (SWIFTGRPC_QUEUE_SPIN_US, default 50 µs) before it sleeps: elements
    // pushed during the spin and after it both reach it, and a shutdown ends the wait.
    let q = EventQueue<Int>()
    let got = Locked([Int]())
    var consumer = pthread_t()
    let box = Unmanaged.passRetained(Pair(q, got))
    pthread_create(&consumer, nil, { arg in
      let pair = Unmanaged<Pair>.fromOpaque(arg!).takeRetainedValue()
      while case .element(let e) = pair.queue.next(deadline: Int64.max) { pair.got.withLock { $0.append(e) } }
      return nil
    }, box.toOpaque())
    for i in 0..<200 {
      q.push(i)
      if i % 50 == 0 { usleep(2000) }  // the consumer runs dry, spins, sleeps
    }
    while got.withLock({ $0.count }) < 200 { usleep(100) }
    q.shutdown()
    pthread_join(consumer, nil)
    #expect(got.withLock { $0 } == Array(0..<200))
    guard case .timedOut = q.next(deadline: 0) else {  // (shut down and empty: .shutDown)
      return
    }
    Issue.record("a shut-down queue timed out instead of reporting shutdown")
  }

  final class Pair: @unchecked Sendable {
    let queue: EventQueue<Int>
    let got: Locked<[Int]>
    init(_ q: EventQueue<Int>, _ g: Locked<[Int]>) { queue = q; got = g }
  }

  /// Whether `fd` is readable now.
  private func readable(_ fd: Int32) -> Bool {
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&p, 1, 0) == 1
  }

  @Test func readinessDescriptorSignalsTheEmptyToNonEmptyEdge() throws {
    let q = EventQueue<Int>()
    let fd = try q.readinessFD()
    #expect(try q.readinessFD() == fd)
    #expect(!readable(fd))
    q.push(1)
    q.push(2)
    #expect(readable(fd))
    var count: UInt64 = 0
    #expect(read(fd, &count, 8) == 8)
    #expect(count == 1)  // the second push found the queue non-empty
    #expect(!readable(fd))
    var taken: [Int] = []
    _ = q.nextBatch(deadline: 0, max: 1, into: &taken)
    q.push(3)
    #expect(!readable(fd))  // still not empty: no signal
    _ = q.nextBatch(deadline: 0, max: 8, into: &taken)
    #expect(taken == [1, 2, 3])
    q.push(4)
    #expect(readable(fd))  // empty again: signalled
    _ = read(fd, &count, 8)
    q.shutdown()
    #expect(readable(fd))
    q.close()
  }

  @Test func readinessDescriptorOfANonEmptyQueueIsReadableAtOnce() throws {
    let q = EventQueue<Int>()
    q.push(1)
    #expect(readable(try q.readinessFD()))
  }

  @Test func shutdownDrainsThenReports() {
    let dropped = Locked([Int]())
    let q = EventQueue<Int>(onDrop: { v in dropped.withLock { $0.append(v) } })
    q.push(1)
    q.shutdown()
    #expect(q.push(2) == false)
    guard case .element(1) = q.next(deadline: Int64.max) else { Issue.record("lost 1"); return }
    guard case .shutDown = q.next(deadline: Int64.max) else { Issue.record("no shutdown"); return }
    #expect(dropped.withLock { $0 } == [2])
  }

  @Test func manyProducersOneConsumer() {
    let q = EventQueue<Int>()
    let producers = 4
    let perProducer = 5000
    var threads = [pthread_t]()
    for _ in 0..<producers {
      var t = pthread_t()
      let box = Unmanaged.passRetained(q)
      pthread_create(&t, nil, { arg in
        let q = Unmanaged<EventQueue<Int>>.fromOpaque(arg!).takeRetainedValue()
        for i in 0..<5000 { q.push(i) }
        return nil
      }, box.toOpaque())
      threads.append(t)
    }
    var sum = 0
    for _ in 0..<(producers * perProducer) {
      if case .element(let e) = q.next(deadline: Int64.max) { sum += e }
    }
    for t in threads { pthread_join(t, nil) }
    #expect(sum == producers * (perProducer * (perProducer - 1) / 2))
  }
}

@Suite struct TimerHeapTests {
  @Test func popsInDeadlineOrder() {
    var heap = TimerHeap()
    let fired = Locked([Int]())
    for (i, d) in [50, 10, 40, 10, 30, 20].enumerated() {
      heap.schedule(at: Int64(d)) { fired.withLock { $0.append(i) } }
    }
    #expect(heap.nextDeadline == 10)
    #expect(heap.popDue(now: 5) == nil)
    while let action = heap.popDue(now: 45) { action() }
    #expect(fired.withLock { $0 } == [1, 3, 5, 4, 2])
    #expect(heap.nextDeadline == 50)
  }

  @Test func cancelRemovesAtOnceAndKeepsTheOrder() {
    var heap = TimerHeap()
    let fired = Locked([Int]())
    var timers = [LoopTimer]()
    for i in 0..<200 {
      timers.append(heap.schedule(at: Int64((i * 7919) % 1000)) { fired.withLock { $0.append(i) } })
    }
    for (i, t) in timers.enumerated() where i % 3 != 0 { heap.cancel(t) }
    #expect(heap.count == 67)
    heap.cancel(timers[1])  // twice: no effect
    #expect(!timers[1].isPending && timers[0].isPending)
    var last = Int64.min
    var order = [Int]()
    while let d = heap.nextDeadline, let action = heap.popDue(now: Int64.max) {
      #expect(d >= last)
      last = d
      action()
    }
    order = fired.withLock { $0 }
    #expect(Set(order) == Set(stride(from: 0, to: 200, by: 3)))
    #expect(heap.count == 0)
    heap.cancel(timers[0])  // fired: no effect
  }

  @Test func aMillionCancelledTimersLeaveNothing() {
    var heap = TimerHeap()
    for i in 0..<1_000_000 {
      let t = heap.schedule(at: Int64.max - Int64(i)) {}
      heap.cancel(t)
    }
    #expect(heap.count == 0)
  }
}

@Suite struct EventLoopTests {
  @Test func tasksRunOnTheLoopThreadFromAnyThread() throws {
    let group = try EventLoopGroup(threads: 2)
    defer { group.shutdown() }
    let ran = Locked(0)
    let wrongThread = Locked(0)
    for loop in group.loops {
      for _ in 0..<1000 {
        loop.execute {
          if !loop.inLoop { wrongThread.withLock { $0 += 1 } }
          ran.withLock { $0 += 1 }
        }
      }
    }
    group.onEveryLoopAndWait { _ in }
    #expect(ran.withLock { $0 } == 2000)
    #expect(wrongThread.withLock { $0 } == 0)
    #expect(!group.isLoopThread)
  }

  @Test func aDrainAppliesABoundedBatchThenServesTheSockets() throws {
    // A host that queues without pause cannot keep the loop from its sockets: one drain applies
    // at most `drainBatch` items and says that more remain.
    let loop = try EventLoop(index: 0)
    loop.bindToCurrentThread()
    let applied = Locked(0)
    for _ in 0..<(3 * EventLoop.drainBatch + 5) { loop.execute { applied.withLock { $0 += 1 } } }
    #expect(loop.drainQueue())
    #expect(applied.withLock { $0 } == EventLoop.drainBatch)
    #expect(loop.drainQueue() && loop.drainQueue())
    #expect(!loop.drainQueue(), "the last five")
    #expect(applied.withLock { $0 } == 3 * EventLoop.drainBatch + 5)
  }

  @Test func aDrainYieldsOnceItHasCompressedItsShare() throws {
    // Sixteen big messages queued at once are packed and sent a few per drain (the loop flushes
    // between drains), not all before the first leaves.
    let loop = try EventLoop(index: 0)
    loop.bindToCurrentThread()
    let applied = Locked(0)
    for _ in 0..<4 {
      loop.execute {
        loop.compressionBudget -= 20 * 1024  // what Call.enqueue spends packing 20 KiB
        applied.withLock { $0 += 1 }
      }
    }
    #expect(loop.drainQueue())
    #expect(applied.withLock { $0 } == 2, "32 KiB per drain: the second message spends the rest")
    #expect(!loop.drainQueue())
    #expect(applied.withLock { $0 } == 4)
  }

  @Test func answersForUnknownTokensAreRefused() throws {
    let group = try EventLoopGroup(threads: 2)
    defer { group.shutdown() }
    let server = Server(group: group)
    #expect(server.answer(token: 0, .read) == .unknown)
    #expect(server.answer(token: 1 << 8 | 7, .read) == .unknown, "loop 7 does not exist")
    #expect(server.answer(token: 1 << 8, .read) == .unknown, "never issued")
  }

  @Test func timersFireOnTheLoop() throws {
    let group = try EventLoopGroup(threads: 1)
    defer { group.shutdown() }
    let loop = group.loops[0]
    let fired = Locked([Int]())
    let start = monotonicNanos()
    loop.execute {
      loop.schedule(at: start + 30_000_000) { fired.withLock { $0.append(2) } }
      loop.schedule(at: start + 10_000_000) { fired.withLock { $0.append(1) } }
    }
    while fired.withLock({ $0.count }) < 2 && monotonicNanos() - start < 5_000_000_000 {
      usleep(1000)
    }
    #expect(fired.withLock { $0 } == [1, 2])
    #expect(monotonicNanos() - start >= 30_000_000)
  }

  @Test func serverLifecycleErrors() throws {
    let group = try EventLoopGroup(threads: 1)
    defer { group.shutdown() }
    let server = Server(group: group)
    #expect(throws: Server.ServerError.self) { _ = try server.listen("bogus") }
    let port = try server.listen("127.0.0.1:0")
    #expect(port > 0)
    try server.start()
    #expect(throws: Server.ServerError.wrongState("the server was already started")) {
      try server.start()
    }
    server.shutdown(graceNanos: 0)
    #expect(server.phase == .stopped)
    server.shutdown(graceNanos: 0)
  }
}

/// The descriptor inventory a forked child closes (ForkSupport.child): every descriptor the
/// library opens is in it while open. (That a closed one leaves it cannot be checked here: tests
/// run in parallel, and the number may be reissued at once.)
@Suite struct FileDescriptorInventoryTests {
  private func tracked(_ fd: Int32) -> Bool { FileDescriptors.open.withLock { $0.contains(fd) } }

  @Test func queueDescriptorsAreTrackedWhileOpen() throws {
    let queue = EventQueue<Int>()
    let fd = try queue.readinessFD()
    #expect(tracked(fd))
    queue.close()
  }

  @Test func listeningSocketsAreTrackedWhileOpen() throws {
    let (fd, port) = try makeListeningSocket(.inet(host: "127.0.0.1", port: 0))
    #expect(port > 0 && tracked(fd))
    FileDescriptors.close(fd)
  }

  @Test func forkHandlersTakeAndGiveBackTheLocks() {
    ForkSupport.prepare()
    ForkSupport.parent()
    #expect(FileDescriptors.count >= 0, "taken and released: a lock still held would hang here")
  }
}
