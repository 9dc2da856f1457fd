import CLinux
import Glibc

/// A gRPC channel: a target, its resolved addresses (one subchannel each), a load-balancing
/// policy over them, and the calls started on it. Pinned to one loop of the runtime: every
/// connection, call and timer of the channel lives there. Cross-thread state is in `shared`.
public final class Channel: @unchecked Sendable {
  // @unchecked: loop-only fields are touched only on `loop`; `shared` is locked; the rest is
  // immutable.

  public enum LoadBalancing: Int32, Sendable {
    case pickFirst = 0
    case roundRobin = 1
  }

  public struct Config: Sendable {
    /// Minimum time a connection attempt may take (gRPC's MIN_CONNECT_TIMEOUT).
    public var connectTimeoutNanos: Int64 = 20_000_000_000
    public var initialBackoffNanos: Int64 = 1_000_000_000
    public var maxBackoffNanos: Int64 = 120_000_000_000
    public var backoffMultiplier = 1.6
    public var backoffJitter = 0.2
    /// Interval of keepalive PINGs; `Int64.max` disables them.
    public var keepaliveTimeNanos = Int64.max
    public var keepaliveTimeoutNanos: Int64 = 20_000_000_000
    public var keepalivePermitWithoutCalls = false
    public var maxSendMessageSize = Int(UInt32.max)
    public var maxReceiveMessageSize = 4 * 1024 * 1024
    /// Deadline of calls started without one; nil: none.
    public var defaultTimeoutNanos: Int64?
    public var userAgent = "swiftgrpc/0.9.0"
    public var loadBalancing = LoadBalancing.pickFirst
    /// `:authority` override; nil: derived from the target.
    public var authority: String?
    /// Decoded size of a response header block (headers or trailers), advertised as
    /// SETTINGS_MAX_HEADER_LIST_SIZE; larger ends the call with RESOURCE_EXHAUSTED.
    public var maxMetadataSize = 16 * 1024
    /// Control frames a server may send per second (see `Server.Config`); 0: no limit.
    public var maxControlFramesPerSecond: Int64 = 1000
    /// TLS settings; nil: plaintext.
    public var credentials: ChannelCredentials?
    /// The encoding requests are compressed in, unless a call chooses another.
    public var defaultCompression = MessageEncoding.identity
    /// The shortest interval between two resolutions of a DNS name (re-resolution on a lost or
    /// GOAWAY'd connection waits out the rest); gRPC C-core's default, 30 s.
    public var minTimeBetweenResolutionsNanos: Int64 = 30_000_000_000
    public init() {}
  }

  public enum ChannelError: Error, Equatable, Sendable {
    case invalidTarget(String)
    case closed(String)
    case tooLarge(String)
    case invalidArgument(String)
  }

  struct Shared {
    var state = ConnectivityState.idle
    var closing = false
    var destroyed = false
    /// Calls started and not yet ended.
    var calls = 0
  }

  static let ids = Locked<UInt64>(0)
  static let loopCursor = Locked<Int>(0)

  public let id: UInt64
  public let loop: EventLoop
  public let target: ClientTarget
  public let config: Config
  let authority: String
  let shared = Locked(Shared())

  // Loop-only state.
  private enum Resolution { case unresolved, resolving, resolved, failed }
  private var resolution = Resolution.unresolved
  private var subchannels: [Subchannel] = []
  /// Every live connection, including draining ones no subchannel points to any more.
  var connections: [ObjectIdentifier: ClientConnection] = [:]
  private var pending: [ClientCall] = []
  /// Calls waiting for their call credentials' plugins.
  var awaitingCredentials: [ObjectIdentifier: ClientCall] = [:]
  /// The grpc-accept-encoding its servers last sent (loop thread); nil until one did. A call
  /// does not compress in an encoding they did not list.
  var serverAccepts: AcceptedEncodings?
  /// The keepalive interval (loop thread): the configured one, doubled each time a server
  /// answers GOAWAY ENHANCE_YOUR_CALM "too_many_pings", as gRPC clients do (gRFC A8).
  lazy var keepaliveTimeNanos = config.keepaliveTimeNanos

  /// A server said "too_many_pings": ping it half as often.
  func tooManyPings() {
    if keepaliveTimeNanos != Time.never { keepaliveTimeNanos = Time.add(keepaliveTimeNanos, keepaliveTimeNanos) }
  }
  private var lastError = "not connected yet"
  private var roundRobinNext = 0
  private var pickFirstIndex = 0
  private var passBackoff: Backoff
  private var retryGeneration = 0
  private var retryPending = false
  /// When the name was last resolved, and a re-resolution waiting out the minimum interval.
  private var lastResolution: Int64?
  private var reresolveTimer: LoopTimer?

  public init(target: String, group: EventLoopGroup, config: Config) throws(ChannelError) {
    let parsed: ClientTarget
    switch ClientTarget.parse(target) {
    case .success(let t): parsed = t
    case .failure(let e): throw .invalidTarget(e.description)
    }
    self.target = parsed
    self.config = config
    // As gRPC C-core: the TLS server name override is also the default :authority.
    authority = config.authority ?? config.credentials?.serverNameOverride ?? parsed.authority
    id = Channel.ids.withLock { $0 += 1; return $0 }
    let cursor = Channel.loopCursor.withLock { c -> Int in c += 1; return c }
    loop = group.loops[cursor % group.loops.count]
    passBackoff = Backoff(config)
  }

  // MARK: - Any thread

  public var state: ConnectivityState { shared.withLock { $0.state } }

  /// The current state; starts connecting if idle and `tryToConnect`.
  public func state(tryToConnect: Bool) -> ConnectivityState {
    let s = state
    if s == .idle && tryToConnect { loop.execute { [self] in requestConnection() } }
    return s
  }

  /// Waits until the state differs from `from` or `deadline` passes; nil on timeout.
  public func waitForStateChange(from: ConnectivityState, deadline: Int64) -> ConnectivityState? {
    shared.lock.lock()
    defer { shared.lock.unlock() }
    while shared.peek().state == from {
      if monotonicNanos() >= deadline { return nil }
      _ = shared.lock.wait(untilNanos: deadline)
    }
    return shared.peek().state
  }

  /// Starts a call; its events go to `start.sink`. Returns the call id.
  public func startCall(_ start: CallStart) throws(ChannelError) -> UInt64 {
    if let why = MethodPath.callError(start.method) { throw .invalidArgument(why) }
    if let m = start.message, m.count > config.maxSendMessageSize {
      throw .tooLarge("message of \(m.count) bytes is above the limit of \(config.maxSendMessageSize)")
    }
    let deadline: Int64
    if let d = start.deadline {
      deadline = d
    } else if let t = config.defaultTimeoutNanos {
      deadline = Time.deadline(after: t)
    } else {
      deadline = Time.never
    }
    let call = ClientCall(channel: self, start: start, deadline: deadline)
    // The channel lock is held while queueing, so a concurrent destroy's sweep runs after it.
    return try shared.withLock { s throws(ChannelError) in
      if s.closing { throw .closed("the channel is closed") }
      let callID = loop.registry.register(call)
      guard loop.enqueue(.start(call)) else {
        _ = loop.registry.end(call)
        throw .closed("the runtime is shutting down")
      }
      s.calls += 1
      return callID
    }
  }

  /// Validates a host operation on a call (send, half-close, read, cancel) and queues it.
  /// Returns why it was refused (nothing changed then), or nil.
  public func submit(call: UInt64, _ op: CallOp) -> CallError? {
    if let size = op.messageSize, size > config.maxSendMessageSize {
      return .tooLarge("message of \(size) bytes is above the limit of \(config.maxSendMessageSize)")
    }
    return loop.submit(token: call, owner: id, op)
  }

  /// Graceful close: no new calls; calls in flight finish; then the connections close.
  public func close() {
    let first = shared.withLock { s -> Bool in
      defer { s.closing = true }
      return !s.closing
    }
    if first { loop.execute { [self] in closeIfDone() } }
  }

  /// Fails every call (CANCELLED), closes every connection and waits until that is done. No
  /// event of this channel is delivered after it returns. Not from a loop thread.
  public func destroy() {
    shared.withLock { s in
      s.closing = true
      s.destroyed = true
    }
    let done = Locked(false)
    let accepted = loop.execute { [self] in
      sweep(Status(.cancelled, "the channel was destroyed"))
      done.withLock { $0 = true }
      done.lock.broadcast()
    }
    guard accepted else { return }
    done.lock.lock()
    while !done.peek() { _ = done.lock.wait(untilNanos: Int64.max) }
    done.lock.unlock()
  }

  // MARK: - Loop: calls

  func dispatch(_ call: ClientCall) {
    guard call.begin() else { return }
    proceed(call)
  }

  /// Puts a started call (its credentials gathered) on a connection, or makes it wait for one.
  func proceed(_ call: ClientCall) {
    guard call.phase == .pending else { return }
    if shared.withLock({ $0.destroyed }) {
      call.finish(Status(.cancelled, "the channel was destroyed"), resetStream: false)
      return
    }
    while let connection = pick() {
      if connection.startStream(call) { return }
    }
    if state == .transientFailure && !call.waitForReady {
      call.finish(Status(.unavailable, lastError), resetStream: false)
      return
    }
    pending.append(call)
    requestConnection()
  }

  func removePending(_ call: ClientCall) {
    if let i = pending.firstIndex(where: { $0 === call }) { pending.remove(at: i) }
  }

  func callEnded(_ call: ClientCall) {
    let closeNow = shared.withLock { s -> Bool in
      s.calls -= 1
      return s.closing && s.calls == 0
    }
    if closeNow { closeIfDone() }
  }

  private func pick() -> ClientConnection? {
    let ready = subchannels.filter { $0.state == .ready }
    guard !ready.isEmpty else { return nil }
    if config.loadBalancing == .pickFirst { return ready[0].connection }
    roundRobinNext = (roundRobinNext + 1) % ready.count
    return ready[roundRobinNext].connection
  }

  private func flushPending() {
    let waiting = pending
    pending = []
    for call in waiting where call.phase == .pending {
      var started = false
      while let connection = pick() {
        if connection.startStream(call) { started = true; break }
      }
      if !started { pending.append(call) }
    }
  }

  private func failPending(_ status: Status, onlyFailFast: Bool) {
    let waiting = pending
    pending = []
    for call in waiting {
      if onlyFailFast && call.waitForReady {
        pending.append(call)
      } else {
        call.finish(status, resetStream: false)
      }
    }
  }

  // MARK: - Loop: connecting

  /// Starts resolving or connecting if nothing is under way.
  func requestConnection() {
    if shared.withLock({ $0.closing && $0.calls == 0 }) { return }
    if retryPending { return }  // a failed pass (or resolution) is waiting out its backoff
    switch resolution {
    case .unresolved, .failed:
      resolve()
      return
    case .resolving:
      return
    case .resolved:
      break
    }
    if subchannels.contains(where: { $0.state == .ready || $0.state == .connecting }) { return }
    startPass()
  }

  private func resolve() {
    resolution = .resolving
    lastResolution = monotonicNanos()
    updateState()
    if !target.needsDNS {
      resolved(target.resolve())
      return
    }
    let target = self.target
    let loop = self.loop
    let submitted = loop.resolver.submit { [self] in
      let result = target.resolve()
      loop.execute { [self] in resolved(result) }
    }
    if !submitted { resolved(.failure(TargetError("the runtime is shutting down"))) }
  }

  private func resolved(_ result: Result<[ResolvedAddress], TargetError>) {
    if shared.withLock({ $0.destroyed }) { return }
    if !subchannels.isEmpty {
      reresolved(result)
      return
    }
    switch result {
    case .failure(let e):
      resolution = .failed
      lastError = "name resolution failed: \(e.description)"
      updateState()
      scheduleRetry(after: passBackoff.next())
    case .success(let addresses):
      resolution = .resolved
      subchannels = addresses.map { Subchannel(channel: self, address: $0) }
      startPass()
    }
  }

  // MARK: - Loop: re-resolution

  /// Resolves the name again (a connection was lost or told to go away), at most once per
  /// `minTimeBetweenResolutionsNanos` (gRPC C-core's DNS resolver rule): a later request waits
  /// out the rest of the interval.
  func requestReresolution() {
    guard target.needsDNS, resolution != .resolving, reresolveTimer == nil,
      !shared.withLock({ $0.closing || $0.destroyed })
    else { return }
    let now = monotonicNanos()
    let next = Time.add(lastResolution ?? Int64.min / 2, config.minTimeBetweenResolutionsNanos)
    if next > now {
      reresolveTimer = loop.schedule(at: next) { [weak self] in
        self?.reresolveTimer = nil
        self?.requestReresolution()
      }
      return
    }
    resolve()
  }

  /// New addresses for the name: those still there keep their subchannel (and connection), new
  /// ones get one, vanished ones are drained (their calls finish, no new ones go there).
  private func reresolved(_ result: Result<[ResolvedAddress], TargetError>) {
    resolution = .resolved
    guard case .success(let addresses) = result, !addresses.isEmpty else {
      updateState()  // keep the addresses we had
      return
    }
    var next: [Subchannel] = []
    for a in addresses where !next.contains(where: { $0.address == a }) {
      next.append(subchannels.first(where: { $0.address == a }) ?? Subchannel(channel: self, address: a))
    }
    let vanished = subchannels.filter { sc in !next.contains { $0 === sc } }
    subchannels = next
    for sc in vanished { sc.retire() }
    if config.loadBalancing == .roundRobin {
      for sc in subchannels where sc.state == .idle { sc.connect() }
    } else if !subchannels.contains(where: { $0.state == .ready || $0.state == .connecting }),
      !pending.isEmpty
    {
      startPass()
    }
    updateState()
    flushPending()
  }

  /// Connects: pick-first tries the addresses in order, round-robin all at once.
  private func startPass() {
    guard !subchannels.isEmpty, !shared.withLock({ $0.closing && $0.calls == 0 }) else { return }
    if config.loadBalancing == .pickFirst {
      pickFirstIndex = 0
      subchannels[0].connect()
    } else {
      for sc in subchannels where sc.state == .idle { sc.connect() }
    }
    updateState()
  }

  func subchannelReady(_ sc: Subchannel) {
    passBackoff.reset()
    updateState()
    flushPending()
  }

  /// A ready subchannel lost its connection (closed or GOAWAY): the name is resolved again
  /// (servers come and go behind it), and the subchannel reconnects.
  func subchannelLost(_ sc: Subchannel) {
    updateState()
    if shared.withLock({ $0.closing }) { return }
    requestReresolution()
    if config.loadBalancing == .roundRobin {
      sc.connect()
    } else if !pending.isEmpty {
      requestConnection()
    }
    updateState()
  }

  func subchannelFailed(_ sc: Subchannel, reason: String) {
    lastError = "failed to connect to all addresses; last error: \(reason)"
    if shared.withLock({ $0.closing && $0.calls == 0 }) {
      updateState()
      return
    }
    if config.loadBalancing == .pickFirst {
      if let i = subchannels.firstIndex(where: { $0 === sc }), i == pickFirstIndex,
        i + 1 < subchannels.count
      {
        pickFirstIndex = i + 1
        subchannels[i + 1].connect()
        updateState()
        return
      }
      updateState()
      requestReresolution()
      scheduleRetry(after: passBackoff.next())
    } else {
      updateState()
      requestReresolution()
      let delay = sc.backoff.next()
      loop.schedule(after: delay) { [weak self, weak sc] in
        guard let self, let sc, sc.state == .transientFailure,
          !self.shared.withLock({ $0.closing })
        else { return }
        sc.connect()
        self.updateState()
      }
    }
  }

  /// After a failed pass: wait out the backoff, then reconnect if calls wait, else go idle.
  private func scheduleRetry(after delay: Int64) {
    retryGeneration += 1
    retryPending = true
    let generation = retryGeneration
    loop.schedule(after: delay) { [weak self] in
      guard let self, self.retryGeneration == generation else { return }
      self.retryPending = false
      if self.shared.withLock({ $0.closing && $0.calls == 0 }) { return }
      if self.pending.isEmpty {
        for sc in self.subchannels where sc.state == .transientFailure { sc.state = .idle }
        if self.resolution == .failed { self.resolution = .unresolved }
        self.updateState()
      } else if self.resolution == .failed {
        self.resolve()
      } else {
        self.startPass()
      }
    }
  }

  /// A connection has no streams left (loop): nothing to do unless the channel is closing.
  func connectionIdle(_ connection: ClientConnection) {
    if shared.withLock({ $0.closing && $0.calls == 0 }) { closeIfDone() }
  }

  // MARK: - Loop: state

  private func computeState() -> ConnectivityState {
    let s = shared.withLock { $0 }
    if s.closing && s.calls == 0 { return .shutdown }
    if subchannels.contains(where: { $0.state == .ready }) { return .ready }
    // Resolving again with addresses in hand: the subchannels say what the channel is.
    if (resolution == .resolving && subchannels.isEmpty)
      || subchannels.contains(where: { $0.state == .connecting })
    {
      return .connecting
    }
    if resolution == .failed { return .transientFailure }
    if !subchannels.isEmpty && subchannels.allSatisfy({ $0.state == .transientFailure }) {
      return .transientFailure
    }
    if config.loadBalancing == .roundRobin
      && subchannels.contains(where: { $0.state == .transientFailure })
    {
      return .transientFailure
    }
    return .idle
  }

  func updateState() {
    let new = computeState()
    let changed = shared.withLock { s -> Bool in
      guard s.state != new, s.state != .shutdown else { return false }
      s.state = new
      return true
    }
    guard changed else { return }
    shared.lock.broadcast()
    if new == .transientFailure {
      failPending(Status(.unavailable, lastError), onlyFailFast: true)
    }
  }

  private func closeIfDone() {
    guard shared.withLock({ $0.closing && $0.calls == 0 }) else { return }
    retryGeneration += 1
    for c in connections.values { c.drain() }
    for sc in subchannels { sc.state = .idle }
    updateState()
  }

  /// Destroy: fail every call, close every connection.
  private func sweep(_ status: Status) {
    failPending(status, onlyFailFast: false)
    for call in awaitingCredentials.values { call.finish(status, resetStream: false) }
    for c in connections.values {
      for call in c.calls.values { call.finish(status, resetStream: true) }
    }
    for c in connections.values {
      c.flush()
      c.close(reason: status)
    }
    retryGeneration += 1
    for sc in subchannels { sc.state = .idle }
    shared.withLock { $0.state = .shutdown }
    shared.lock.broadcast()
  }
}

/// gRPC connection backoff (doc/connection-backoff.md): 1 s, ×1.6 per failure, ±20 % jitter,
/// at most 120 s (all configurable).
struct Backoff {
  let initial: Int64
  let maximum: Int64
  let multiplier: Double
  let jitter: Double
  private(set) var current: Int64 = 0

  init(_ config: Channel.Config) {
    initial = max(1_000_000, config.initialBackoffNanos)
    maximum = max(initial, config.maxBackoffNanos)
    multiplier = config.backoffMultiplier
    jitter = config.backoffJitter
  }

  /// The delay before the next attempt, growing with every call (saturating).
  mutating func next() -> Int64 {
    current = current == 0 ? initial : min(Time.saturating(Double(current) * multiplier), maximum)
    let spread = Double(current) * jitter
    let offset = spread == 0 ? 0 : Time.saturating(Double.random(in: -spread...spread))
    return max(1_000_000, Time.add(current, offset))
  }

  mutating func reset() { current = 0 }
}

/// One resolved address of a channel and its connection. Loop-bound.
final class Subchannel {
  enum State { case idle, connecting, ready, transientFailure }

  unowned let channel: Channel
  let address: ResolvedAddress
  var state = State.idle
  private(set) var connection: ClientConnection?
  var backoff: Backoff
  private var attempt = 0

  init(channel: Channel, address: ResolvedAddress) {
    self.channel = channel
    self.address = address
    backoff = Backoff(channel.config)
  }

  func connect() {
    guard state != .connecting && state != .ready else { return }
    state = .connecting
    attempt += 1
    let thisAttempt = attempt
    let c: ClientConnection
    do throws(SystemError) {
      c = try ClientConnection.connect(to: address, subchannel: self, loop: channel.loop)
    } catch {
      state = .transientFailure
      channel.subchannelFailed(self, reason: error.description)
      return
    }
    connection = c
    channel.connections[ObjectIdentifier(c)] = c
    let timeout = max(channel.config.connectTimeoutNanos, backoff.current)
    // The connection by identity, not weakly (a weak reference would put every retain of it on
    // the slow path for its whole life).
    let id = ObjectIdentifier(c)
    channel.loop.schedule(after: timeout) { [weak self] in
      guard let self, self.attempt == thisAttempt, self.state == .connecting,
        let c = self.connection, ObjectIdentifier(c) == id
      else { return }
      c.close(reason: Status(.unavailable, "connect(\(self.address.description)) timed out"))
    }
  }

  /// The address is gone from the name's resolution: its connection drains (calls on it finish)
  /// and nothing more goes through this subchannel (the connection keeps it until it closes).
  private(set) var retired = false

  func retire() {
    retired = true
    state = .idle
    connection?.drain()
  }

  func connectionReady(_ c: ClientConnection) {
    guard connection === c, !retired else { return }
    state = .ready
    backoff.reset()
    channel.subchannelReady(self)
  }

  func connectionDraining(_ c: ClientConnection) {
    guard connection === c, !retired else { return }
    connection = nil
    state = .idle
    channel.subchannelLost(self)
  }

  func connectionClosed(_ c: ClientConnection, reason: Status) {
    channel.connections[ObjectIdentifier(c)] = nil
    guard connection === c else { return }
    connection = nil
    if retired { return }
    if state == .ready {
      state = .idle
      channel.subchannelLost(self)
    } else {
      state = .transientFailure
      channel.subchannelFailed(self, reason: reason.message)
    }
  }
}
