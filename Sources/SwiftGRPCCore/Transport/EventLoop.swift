import CLinux
import Glibc

/// Something registered with a loop's epoll set, reached by its file descriptor.
protocol FDHandler: AnyObject {
  func handleEvents(_ events: UInt32)
}

/// One event-loop thread: an epoll set, an eventfd, a completion queue that any thread may push
/// onto, the token table of the calls it owns, and timers. Everything else it owns (connections,
/// calls, nghttp2 sessions) is touched only on its thread.
public final class EventLoop: @unchecked Sendable {
  // @unchecked: the fields under "loop-only" are touched only on `thread` (asserted in debug
  // builds by `assertInLoop`); cross-thread state lives in `shared`, under its lock.

  /// Work queued for the loop by other threads (or by itself).
  enum Work {
    case answer(any HostAnswerable, HostAnswer)
    case clientStart(ClientCall)
    case clientOp(ClientCall, ClientOp)
    case task(() -> Void)
  }

  /// Host-visible state of one call, guarded by the loop's lock so answers are validated
  /// synchronously on the host's thread.
  struct TokenEntry {
    let call: any HostAnswerable
    let serverID: UInt64
    let kind: MethodKind
    var completed = false
    var sentInitialMetadata = false
    var sentMessages = 0
    var readOutstanding = false
    var halfCloseDelivered = false
  }

  /// Host-visible state of one client call, guarded like `TokenEntry`.
  struct ClientCallEntry {
    let call: ClientCall
    let channelID: UInt64
    let kind: MethodKind
    var halfClosed: Bool
    var sendOutstanding = false
    var readOutstanding = false
  }

  struct Shared {
    var work: [Work] = []
    var tokens: [UInt64: TokenEntry] = [:]
    var clientCalls: [UInt64: ClientCallEntry] = [:]
    var nextSeq: UInt64 = 1
    var stopping = false
  }

  public let index: Int
  let epfd: Int32
  let wakeFd: Int32
  let shared = Locked(Shared())
  private(set) var thread = pthread_t()

  // Loop-only state.
  private var handlers: [Int32: FDHandler] = [:]
  private var timers = TimerHeap()
  private var dirty: [HTTP2Connection] = []
  private var running = true
  private var spareWork: [Work] = []
  /// A receive buffer shared by every connection of the loop.
  let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

  init(index: Int) throws(SystemError) {
    self.index = index
    epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
    if epfd < 0 { throw SystemError("epoll_create1") }
    wakeFd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    if wakeFd < 0 {
      let e = SystemError("eventfd")
      close(epfd)
      throw e
    }
    var ev = epoll_event()
    ev.events = EPOLLIN.rawValue
    ev.data.fd = wakeFd
    epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFd, &ev)
  }

  deinit {
    close(epfd)
    close(wakeFd)
    readBuffer.deallocate()
  }

  func start() throws(SystemError) {
    let box = Unmanaged.passRetained(self)
    let rc = pthread_create(
      &thread, nil,
      { arg in
        let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
        loop.run()
        return nil
      }, box.toOpaque())
    if rc != 0 {
      box.release()
      throw SystemError("pthread_create", errno: rc)
    }
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
    let (wasEmpty, accepted) = shared.withLock { s -> (Bool, Bool) in
      if s.stopping { return (false, false) }
      s.work.append(work)
      return (s.work.count == 1, true)
    }
    if wasEmpty && !inLoop { wake() }
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

  func schedule(at deadline: Int64, _ action: @escaping () -> Void) {
    assertInLoop()
    timers.push(deadline: deadline, action: action)
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
    while running {
      var timeout: Int32 = -1
      if let next = timers.nextDeadline {
        let now = monotonicNanos()
        timeout = next <= now ? 0 : Int32(min((next - now + 999_999) / 1_000_000, 60_000))
      }
      let n = epoll_wait(epfd, events, maxEvents, timeout)
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
      drainQueue()
      if timers.nextDeadline != nil { runTimers() }
      flushDirty()
    }
    finalTeardown()
  }

  /// Processes every queued item, including those queued while processing.
  func drainQueue() {
    while true {
      var batch = spareWork
      let stopping = shared.withLock { s -> Bool in
        swap(&batch, &s.work)
        return s.stopping
      }
      if batch.isEmpty {
        spareWork = batch
        if stopping { running = false }
        return
      }
      for item in batch {
        switch item {
        case .answer(let call, let answer): call.hostAnswered(answer)
        case .clientStart(let call): call.channel.dispatch(call)
        case .clientOp(let call, let op): call.apply(op)
        case .task(let task): task()
        }
      }
      batch.removeAll(keepingCapacity: true)
      spareWork = batch
    }
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
    dirty.removeAll()
    shared.withLock { $0.work.removeAll() }
  }

  // MARK: - Tokens

  /// Issues a token for a call: `seq << 8 | loop index`, never reused within the runtime.
  func issueToken(call: any HostAnswerable, serverID: UInt64, kind: MethodKind) -> UInt64 {
    shared.withLock { s in
      let token = s.nextSeq << 8 | UInt64(index)
      s.nextSeq += 1
      s.tokens[token] = TokenEntry(call: call, serverID: serverID, kind: kind)
      return token
    }
  }

  /// Closes a token from the loop's side. Returns true if the host had not completed it (so the
  /// host must be told with a CANCELLED event).
  func closeToken(_ token: UInt64) -> Bool {
    shared.withLock { s in
      guard let entry = s.tokens.removeValue(forKey: token) else { return false }
      return !entry.completed
    }
  }

  /// Drops a token whose completion the loop has processed.
  func retireToken(_ token: UInt64) {
    _ = shared.withLock { $0.tokens.removeValue(forKey: token) }
  }

  /// Marks a read as delivered (before the MESSAGE or HALF_CLOSE event reaches the host).
  func readDelivered(_ token: UInt64, halfClose: Bool) {
    shared.withLock { s in
      s.tokens[token]?.readOutstanding = false
      if halfClose { s.tokens[token]?.halfCloseDelivered = true }
    }
  }

  /// Validates a host answer against the token's state and queues it; runs on any thread.
  func submit(token: UInt64, serverID: UInt64, answer: HostAnswer) -> AnswerError? {
    var wasEmpty = false
    let result: AnswerError? = shared.withLock { s in
      guard var entry = s.tokens[token], entry.serverID == serverID else {
        return (token >> 8) < s.nextSeq && (token >> 8) > 0 ? .tokenClosed : .unknownToken
      }
      if entry.completed { return .alreadyCompleted }
      switch answer {
      case .initialMetadata:
        if entry.sentInitialMetadata || entry.sentMessages > 0 {
          return .wrongState("initial metadata was already sent")
        }
        entry.sentInitialMetadata = true
      case .message:
        if !entry.kind.serverStreams && entry.sentMessages >= 1 {
          return .wrongState("a \(entry.kind) method sends at most one response message")
        }
        entry.sentMessages += 1
      case .read:
        if !entry.kind.clientStreams {
          return .wrongState("swiftgrpc_call_read is only for client- and bidi-streaming calls")
        }
        if entry.readOutstanding { return .wrongState("a read is already outstanding") }
        if entry.halfCloseDelivered { return .wrongState("the client already half-closed") }
        entry.readOutstanding = true
      case .complete(let message, _, _):
        if message != nil && !entry.kind.serverStreams && entry.sentMessages >= 1 {
          return .wrongState("a \(entry.kind) method sends at most one response message")
        }
        entry.completed = true
      }
      if s.stopping { return .tokenClosed }
      s.tokens[token] = entry
      s.work.append(.answer(entry.call, answer))
      wasEmpty = s.work.count == 1
      return nil
    }
    if wasEmpty && !inLoop { wake() }
    return result
  }
}

extension EventLoop {
  // MARK: - Client calls

  /// Issues an id for a client call (same numbering as tokens) and queues its start. Returns
  /// nil once the loop is stopping.
  func startClientCall(_ call: ClientCall, channelID: UInt64) -> UInt64? {
    var wasEmpty = false
    let id: UInt64? = shared.withLock { s in
      if s.stopping { return nil }
      let id = s.nextSeq << 8 | UInt64(index)
      s.nextSeq += 1
      call.id = id
      s.clientCalls[id] = ClientCallEntry(
        call: call, channelID: channelID, kind: call.kind, halfClosed: !call.kind.clientStreams)
      s.work.append(.clientStart(call))
      wasEmpty = s.work.count == 1
      return id
    }
    if wasEmpty && !inLoop { wake() }
    return id
  }

  /// Validates a host operation on a client call and queues it; runs on any thread.
  func submitClient(call id: UInt64, channelID: UInt64, op: ClientOp) -> ClientCallError? {
    var wasEmpty = false
    let result: ClientCallError? = shared.withLock { s in
      guard var entry = s.clientCalls[id], entry.channelID == channelID else {
        return (id >> 8) < s.nextSeq && (id >> 8) > 0 && Int(id & 0xFF) == index
          ? .ended : .unknownCall
      }
      switch op {
      case .send:
        if !entry.kind.clientStreams {
          return .wrongState("a \(entry.kind) call sends its one request at start")
        }
        if entry.halfClosed { return .wrongState("the call was half-closed: no more messages") }
        if entry.sendOutstanding {
          return .wrongState("a send is outstanding: wait for its SEND_DONE event")
        }
        entry.sendOutstanding = true
      case .halfClose:
        if entry.halfClosed { return .wrongState("the call is already half-closed") }
        entry.halfClosed = true
      case .read:
        if !entry.kind.serverStreams {
          return .wrongState("a \(entry.kind) call gets its response with the STATUS event")
        }
        if entry.readOutstanding { return .wrongState("a read is already outstanding") }
        entry.readOutstanding = true
      case .cancel:
        break
      }
      if s.stopping { return .ended }
      s.clientCalls[id] = entry
      s.work.append(.clientOp(entry.call, op))
      wasEmpty = s.work.count == 1
      return nil
    }
    if wasEmpty && !inLoop { wake() }
    return result
  }

  /// Removes a finished call; returns which host operations were still waiting for an event.
  func endClientCall(_ id: UInt64) -> (send: Bool, read: Bool) {
    shared.withLock { s in
      guard let e = s.clientCalls.removeValue(forKey: id) else { return (false, false) }
      return (e.sendOutstanding, e.readOutstanding)
    }
  }

  func clientSendDelivered(_ id: UInt64) {
    shared.withLock { $0.clientCalls[id]?.sendOutstanding = false }
  }

  func clientReadDelivered(_ id: UInt64) {
    shared.withLock { $0.clientCalls[id]?.readOutstanding = false }
  }
}

/// Why a host answer was refused.
public enum AnswerError: Error, Equatable, Sendable {
  case unknownToken
  case tokenClosed
  case alreadyCompleted
  case wrongState(String)
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

/// A binary min-heap of timers.
struct TimerHeap {
  private var items: [(deadline: Int64, seq: UInt64, action: () -> Void)] = []
  private var seq: UInt64 = 0

  var nextDeadline: Int64? { items.first?.deadline }

  mutating func push(deadline: Int64, action: @escaping () -> Void) {
    seq += 1
    items.append((deadline, seq, action))
    var i = items.count - 1
    while i > 0 {
      let p = (i - 1) / 2
      if less(i, p) { items.swapAt(i, p); i = p } else { break }
    }
  }

  mutating func popDue(now: Int64) -> (() -> Void)? {
    guard let first = items.first, first.deadline <= now else { return nil }
    let last = items.removeLast()
    if !items.isEmpty {
      items[0] = last
      var i = 0
      while true {
        let l = 2 * i + 1
        let r = l + 1
        var m = i
        if l < items.count && less(l, m) { m = l }
        if r < items.count && less(r, m) { m = r }
        if m == i { break }
        items.swapAt(i, m)
        i = m
      }
    }
    return first.action
  }

  private func less(_ a: Int, _ b: Int) -> Bool {
    items[a].deadline < items[b].deadline
      || (items[a].deadline == items[b].deadline && items[a].seq < items[b].seq)
  }
}
