import CLinux
import Glibc

/// Something registered with a loop's epoll set, reached by its file descriptor.
protocol FDHandler: AnyObject {
  func handleEvents(_ events: UInt32)
}

/// One event-loop thread: an epoll set, an eventfd, a completion queue that any thread may push
/// onto, the registry of the calls it owns, and timers. Everything else it owns (connections,
/// calls, nghttp2 sessions) is touched only on its thread.
public final class EventLoop: @unchecked Sendable {
  // @unchecked: the fields under "loop-only" are touched only on `thread` (asserted in debug
  // builds by `assertInLoop`); cross-thread state lives in `shared` and `registry`, under locks.

  /// Work queued for the loop by other threads (or by itself).
  enum Work {
    /// A host operation, already validated against the call's state.
    case op(Call, CallOp)
    /// A client call to start.
    case start(ClientCall)
    case task(() -> Void)
  }

  struct Shared {
    var work: [Work] = []
    var stopping = false
    /// The loop is about to block in epoll_wait (or blocks there) with no work queued: the
    /// next enqueue must wake it. While it runs, work queued for it needs no eventfd write.
    var sleeping = false
  }

  /// How many queued items one drain applies before the loop serves its sockets again.
  static let drainBatch = 1024
  /// Bytes one drain compresses (about a millisecond of zlib) before the loop flushes what it
  /// has and serves its sockets again: sixteen 64 KiB messages queued at once then go out one
  /// by one as they are packed, so the peer unpacks the first while the next is packed, instead
  /// of waiting for all of them.
  static let compressionPerDrain = 32 * 1024

  public let index: Int
  let epfd: Int32
  let wakeFd: Int32
  let shared = Locked(Shared())
  /// The host-visible calls of this loop.
  let registry: CallRegistry
  /// Name resolution, off the loops; owned by the group, so it ends with the runtime.
  let resolver: Resolver
  private(set) var thread = pthread_t()

  // Loop-only state.
  /// zlib streams for the messages of this loop's calls (made on first use).
  private(set) lazy var zlib = ZlibCodec()
  /// What the current drain may still compress (`compressionPerDrain`); calls spend it.
  var compressionBudget = EventLoop.compressionPerDrain
  private var handlers: [Int32: FDHandler] = [:]
  private var timers = TimerHeap()
  private var dirty: [HTTP2Connection] = []
  private var running = true
  /// Work was queued from the loop thread itself during this iteration (loop thread only).
  private var queuedInLoop = false
  /// Run once at the end of this iteration, in order (`atEndOfIteration`).
  private var iterationEnd: [() -> Void] = []
  private var spareWork: [Work] = []
  /// Items taken from `shared.work` and not yet applied (a drain stops after `drainBatch`).
  private var backlog: [Work] = []
  private var backlogHead = 0
  /// A receive buffer shared by every connection of the loop.
  let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

  init(index: Int, resolver: Resolver = Resolver()) throws(SystemError) {
    self.index = index
    self.resolver = resolver
    registry = CallRegistry(loopIndex: index)
    epfd = FileDescriptors.track(epoll_create1(Int32(EPOLL_CLOEXEC)))
    if epfd < 0 { throw SystemError("epoll_create1") }
    wakeFd = FileDescriptors.track(eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)))
    if wakeFd < 0 {
      let e = SystemError("eventfd")
      FileDescriptors.close(epfd)
      throw e
    }
    var ev = epoll_event()
    ev.events = EPOLLIN.rawValue
    ev.data.fd = wakeFd
    epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFd, &ev)
  }

  deinit {
    FileDescriptors.close(epfd)
    FileDescriptors.close(wakeFd)
    readBuffer.deallocate()
  }

  func start() throws(SystemError) {
    let box = Unmanaged.passRetained(self)
    let rc = pthread_create(
      &thread, nil,
      { arg in
        let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
        swiftgrpc_block_sigpipe()
        loop.run()
        return nil
      }, box.toOpaque())
    if rc != 0 {
      box.release()
      throw SystemError("pthread_create", errno: rc)
    }
  }

  /// Makes the calling thread this loop's thread, for a loop that is never started: the fuzz
  /// targets and tests drive it by hand (`runOnce`).
  func bindToCurrentThread() {
    thread = pthread_self()
  }

  /// One pass of the loop's work without waiting: queued work, due timers, pending writes.
  /// For loops driven by hand.
  func runOnce() {
    assertInLoop()
    while drainQueue() {}
    runTimers()
    finishIteration()
  }

  /// Whether the caller runs on this loop's thread.
  public var inLoop: Bool { pthread_equal(pthread_self(), thread) != 0 }

  @inline(__always)
  func assertInLoop() {
    assert(inLoop, "loop-bound state touched off its loop")
  }

  // MARK: - Cross-thread entry points

  /// Queues work and wakes the loop if the queue was empty. Returns false once stopping.
  @discardableResult
  func enqueue(_ work: Work) -> Bool {
    let (mustWake, accepted) = shared.withLock { s -> (Bool, Bool) in
      if s.stopping { return (false, false) }
      s.work.append(work)
      let sleeping = s.sleeping
      s.sleeping = false  // one wake-up is enough
      return (sleeping, true)
    }
    if inLoop {
      queuedInLoop = true
    } else if mustWake {
      wake()
    }
    return accepted
  }

  /// Runs `task` on the loop thread (later, even when called on it).
  @discardableResult
  public func execute(_ task: @escaping () -> Void) -> Bool {
    enqueue(.task(task))
  }

  func wake() {
    var one: UInt64 = 1
    _ = write(wakeFd, &one, 8)
  }

  /// Asks the thread to exit after its current iteration; `join` waits for it.
  func stop() {
    shared.withLock { $0.stopping = true }
    wake()
  }

  func join() {
    pthread_join(thread, nil)
  }

  // MARK: - Loop-only API

  func register(fd: Int32, events: UInt32, handler: FDHandler) {
    assertInLoop()
    var ev = epoll_event()
    ev.events = events
    ev.data.fd = fd
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
    handlers[fd] = handler
  }

  func modify(fd: Int32, events: UInt32) {
    var ev = epoll_event()
    ev.events = events
    ev.data.fd = fd
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
  }

  func unregister(fd: Int32) {
    assertInLoop()
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
    handlers[fd] = nil
  }

  /// Every open server connection of this loop.
  var allConnections: [ServerConnection] { handlers.values.compactMap { $0 as? ServerConnection } }

  /// Runs `action` on the loop at `deadline` unless the returned timer is cancelled first.
  @discardableResult
  func schedule(at deadline: Int64, _ action: @escaping () -> Void) -> LoopTimer {
    assertInLoop()
    return timers.schedule(at: deadline, action)
  }

  /// Runs `action` after `nanos` (saturating).
  @discardableResult
  func schedule(after nanos: Int64, _ action: @escaping () -> Void) -> LoopTimer {
    schedule(at: Time.deadline(after: nanos), action)
  }

  /// Cancels a timer; a fired or cancelled one is left alone. Accepts nil.
  func cancel(_ timer: LoopTimer?) {
    assertInLoop()
    if let timer { timers.cancel(timer) }
  }

  /// Timers pending on this loop (for tests).
  var pendingTimers: Int {
    assertInLoop()
    return timers.count
  }

  /// Runs `action` at the end of this iteration (after its work and timers, before its
  /// writes), after the actions registered before it. Loop thread only.
  public func atEndOfIteration(_ action: @escaping () -> Void) {
    assertInLoop()
    iterationEnd.append(action)
  }

  /// The end of an iteration: the actions left for it, then the writes. Writing may deliver
  /// events (SEND_DONE) or close connections: what that leaves for the end of the iteration
  /// runs now too, not after the next wake-up.
  private func finishIteration() {
    repeat {
      runIterationEnd()
      flushDirty()
    } while !iterationEnd.isEmpty
  }

  private func runIterationEnd() {
    while !iterationEnd.isEmpty {
      let actions = iterationEnd
      iterationEnd.removeAll(keepingCapacity: true)
      for a in actions { a() }
    }
  }

  /// Marks a connection to be flushed at the end of this iteration.
  func markDirty(_ connection: HTTP2Connection) {
    if !connection.isDirty {
      connection.isDirty = true
      dirty.append(connection)
    }
  }

  // MARK: - The loop

  private func run() {
    let maxEvents: Int32 = 256
    let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(maxEvents))
    defer { events.deallocate() }
    var moreWork = false
    while running {
      var timeout: Int32 = -1
      if moreWork {
        timeout = 0
      } else if let next = timers.nextDeadline {
        timeout = Time.millisUntil(next, now: monotonicNanos(), cap: 60_000)
      }
      if timeout != 0 {
        // Work queued since the last drain (no wake-up was written for it) is taken now.
        let idle = shared.withLock { s -> Bool in
          s.sleeping = s.work.isEmpty
          return s.sleeping
        }
        if !idle { timeout = 0 }
      }
      let n = epoll_wait(epfd, events, maxEvents, timeout)
      if timeout != 0 { shared.withLock { $0.sleeping = false } }
      if n > 0 {
        for i in 0..<Int(n) {
          let fd = Int32(bitPattern: swiftgrpc_epoll_data_fd(events + i))
          if fd == wakeFd {
            var value: UInt64 = 0
            _ = read(wakeFd, &value, 8)
          } else if let handler = handlers[fd] {
            handler.handleEvents(events[i].events)
          }
        }
      }
      queuedInLoop = false
      moreWork = drainQueue()
      if timers.nextDeadline != nil { runTimers() }
      finishIteration()
      // Work a timer or a flush queued on this loop runs in the next iteration, not whenever
      // something else wakes the loop.
      moreWork = moreWork || queuedInLoop
    }
    finalTeardown()
  }

  /// Applies queued work, at most `drainBatch` items (and `compressionPerDrain` bytes
  /// compressed), so that a host that queues without pause cannot keep the loop from its
  /// sockets. Returns whether work remains.
  @discardableResult
  func drainQueue() -> Bool {
    var applied = 0
    compressionBudget = EventLoop.compressionPerDrain
    while applied < EventLoop.drainBatch && compressionBudget > 0 {
      if backlogHead == backlog.count {
        backlog.removeAll(keepingCapacity: backlog.capacity <= 4 * EventLoop.drainBatch)
        backlogHead = 0
        var batch = spareWork
        let stopping = shared.withLock { s -> Bool in
          swap(&batch, &s.work)
          return s.stopping
        }
        if batch.isEmpty {
          spareWork = batch
          if stopping { running = false }
          return false
        }
        swap(&backlog, &batch)
        spareWork = batch
      }
      let item = backlog[backlogHead]
      backlogHead += 1
      applied += 1
      switch item {
      case .op(let call, let op): call.apply(op)
      case .start(let call): call.channel.dispatch(call)
      case .task(let task): task()
      }
    }
    return backlogHead < backlog.count || shared.withLock { !$0.work.isEmpty }
  }

  func flushDirty() {
    while !dirty.isEmpty {
      let list = dirty
      dirty.removeAll(keepingCapacity: true)
      for c in list {
        c.isDirty = false
        c.flush()
      }
    }
  }

  private func runTimers() {
    let now = monotonicNanos()
    while let action = timers.popDue(now: now) { action() }
  }

  /// On exit: close whatever is still registered (servers normally closed everything first).
  private func finalTeardown() {
    for (_, handler) in handlers {
      if let c = handler as? HTTP2Connection { c.close(reason: Status(.unavailable, "runtime destroyed")) }
      if let l = handler as? Listener { l.close() }
    }
    handlers.removeAll()
    runIterationEnd()
    dirty.removeAll()
    backlog.removeAll()
    backlogHead = 0
    while let action = timers.popDue(now: Time.never) { _ = action }
    shared.withLock { $0.work.removeAll() }
  }
}

/// A failed system call, with errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
  public let call: String
  public let errno: Int32

  public init(_ call: String, errno: Int32 = swiftgrpc_errno()) {
    self.call = call
    self.errno = errno
  }

  public var description: String {
    "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
  }
}
