import CLinux
import Glibc

/// A gRPC server: a method table, listeners, and the connections its loops accept.
public final class Server: @unchecked Sendable {
  // @unchecked: mutable state is in `state` (locked). `methods` and `config` are written only
  // before `start()`, whose hand-off to the loops (through their locked queues) publishes them;
  // loops only read them.

  /// Limits and timeouts, with defaults like gRPC C-core's.
  public struct Config: Sendable {
    public var maxReceiveMessageSize = 4 * 1024 * 1024
    public var maxSendMessageSize = Int(UInt32.max)
    /// Streams served at once per connection, advertised in SETTINGS; excess streams are refused
    /// one by one (REFUSED_STREAM).
    public var maxConcurrentStreams: UInt32 = 100
    /// Decoded size of a request's header block (RFC 7541 size: name + value + 32 per field),
    /// advertised as SETTINGS_MAX_HEADER_LIST_SIZE; larger requests get RESOURCE_EXHAUSTED.
    public var maxMetadataSize = 16 * 1024
    /// Time a new connection has to send its preface and SETTINGS.
    public var handshakeTimeoutNanos: Int64 = 120_000_000_000
    /// Control frames (PING, SETTINGS, WINDOW_UPDATE, PRIORITY, RST_STREAM, empty DATA, unknown
    /// types) a connection may send per second, in bursts of as many; 0: no limit.
    public var maxControlFramesPerSecond: Int64 = 1000
    /// The encoding responses are compressed in, where the client accepts it (a host may choose
    /// another per call).
    public var defaultCompression = MessageEncoding.identity
    // Connection management, with gRPC C-core's server defaults (gRFCs A8 and A9).
    /// A PING every this long (if a call is open or `keepalivePermitWithoutCalls`); one not
    /// acknowledged within `keepaliveTimeoutNanos` closes the connection. `Int64.max`: off.
    public var keepaliveTimeNanos: Int64 = 2 * 3600 * 1_000_000_000
    public var keepaliveTimeoutNanos: Int64 = 20_000_000_000
    /// Keepalive pings are sent, and client pings accepted at `minPingIntervalNanos`, also with
    /// no call open.
    public var keepalivePermitWithoutCalls = false
    /// The shortest interval allowed between a client's pings while the server sends nothing.
    public var minPingIntervalNanos: Int64 = 300_000_000_000
    /// Pings sooner than allowed before GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; 0: no limit.
    public var maxPingStrikes = 2
    /// A connection with no call open this long is sent GOAWAY ("max_idle"). `Int64.max`: off.
    public var maxConnectionIdleNanos = Int64.max
    /// A connection this old (±10 % jitter) is sent GOAWAY ("max_age"); its calls then have
    /// `maxConnectionAgeGraceNanos` to finish. `Int64.max`: off.
    public var maxConnectionAgeNanos = Int64.max
    public var maxConnectionAgeGraceNanos = Int64.max
    /// SO_REUSEPORT on TCP listeners (several processes on one port, connections spread by the
    /// kernel). Off by default: grpcio turns it on, which lets a second server start on a port
    /// in use without an error.
    public var reusePort = false
    /// Calls held by hosts at once, over every connection (grpcio's `maximum_concurrent_rpcs`);
    /// one more is answered RESOURCE_EXHAUSTED before reaching a host. 0: no limit.
    public var maxConcurrentCalls = 0
    public init() {}
  }

  public enum Phase: Sendable { case idle, running, shuttingDown, stopped }

  public enum ServerError: Error, Equatable, Sendable {
    case wrongState(String)
    case alreadyExists(String)
    case invalidArgument(String)
    case system(String)
  }

  private struct State {
    var phase = Phase.idle
    var pendingListeners: [(fd: Int32, address: ListenAddress, credentials: ServerCredentials?)] = []
    var listeners: [(Listener, EventLoop)] = []
    var connections = 0
    /// Shutting down: loops that have not yet sent GOAWAY on their connections.
    var loopsToDrain = 0
    var onStopped: [@Sendable () -> Void] = []

    /// Shutting down with every loop drained and every connection closed: now stopped.
    mutating func stopIfDrained() -> Bool {
      guard phase == .shuttingDown, loopsToDrain == 0, connections == 0 else { return false }
      phase = .stopped
      return true
    }
  }

  /// Per-stream and per-connection receive windows (bytes).
  static let streamWindow = 1 << 20
  static let connectionWindow = 16 << 20

  static let ids = Locked<UInt64>(0)

  public let id: UInt64
  public let group: EventLoopGroup
  public private(set) var config = Config()
  private(set) var methods: [String: MethodRegistration] = [:]
  private let state = Locked(State())
  /// Calls admitted under `config.maxConcurrentCalls` and not yet ended for their host.
  private let admitted = Locked(0)
  /// The shutdown's grace timer; touched only on `group.loops[0]`.
  private var graceTimer: LoopTimer?

  public init(group: EventLoopGroup) {
    self.group = group
    id = Server.ids.withLock { $0 += 1; return $0 }
  }

  public var phase: Phase { state.withLock { $0.phase } }

  /// Takes one of `config.maxConcurrentCalls` places for a call about to reach its host; false
  /// when all are taken. Only called with a limit set; each true is matched by `releaseCall()`.
  func admitCall() -> Bool {
    let limit = config.maxConcurrentCalls
    return admitted.withLock { n in
      guard n < limit else { return false }
      n += 1
      return true
    }
  }

  /// Gives back the place of a call admitted by `admitCall()` that ended for its host.
  func releaseCall() {
    admitted.withLock { $0 -= 1 }
  }

  var isServing: Bool { state.withLock { $0.phase == .running } }

  // MARK: - Configuration (before start)

  public func configure(_ body: (inout Config) throws(ServerError) -> Void) throws(ServerError) {
    try state.withLock { s throws(ServerError) in
      guard s.phase == .idle else { throw .wrongState("options can only be set before start") }
      var c = config
      try body(&c)
      config = c
    }
  }

  /// The built-in health service, once enabled.
  public private(set) var health: HealthService?

  /// Serves grpc.health.v1.Health (Check and Watch) from the library; before start.
  public func enableHealth() throws(ServerError) -> HealthService {
    if let health { return health }
    for path in [HealthService.checkPath, HealthService.watchPath] where methods[path] != nil {
      throw .alreadyExists("method '\(path)' is already registered: the built-in health service cannot serve it")
    }
    let service = HealthService(server: self)
    try register(MethodRegistration(path: HealthService.checkPath, kind: .unary, sink: service))
    try register(MethodRegistration(path: HealthService.watchPath, kind: .serverStreaming, sink: service))
    health = service
    return service
  }

  public func register(_ registration: MethodRegistration) throws(ServerError) {
    if let why = MethodPath.registrationError(registration.path) { throw .invalidArgument(why) }
    try state.withLock { s throws(ServerError) in
      guard s.phase == .idle else { throw .wrongState("methods can only be registered before start") }
      guard methods[registration.path] == nil else {
        throw .alreadyExists("method '\(registration.path)' is already registered")
      }
      methods[registration.path] = registration
    }
  }

  /// Binds and listens now; accepting starts with `start()`. Returns the bound port. With
  /// `credentials`, connections on this address are TLS.
  public func listen(_ address: String, credentials: ServerCredentials? = nil) throws(ServerError) -> Int {
    guard let parsed = ListenAddress.parse(address) else {
      throw .invalidArgument(
        "malformed listen address '\(address)' (expected host:port, [v6]:port or unix:/path)")
    }
    return try state.withLock { s throws(ServerError) in
      guard s.phase == .idle else { throw .wrongState("listen must be called before start") }
      let result: (fd: Int32, port: Int)
      do throws(SystemError) {
        result = try makeListeningSocket(parsed, reusePort: config.reusePort)
      } catch {
        throw .system(error.description)
      }
      s.pendingListeners.append((result.fd, parsed, credentials))
      return result.port
    }
  }

  public func start() throws(ServerError) {
    let listeners = try state.withLock { s throws(ServerError) -> [(Listener, EventLoop)] in
      guard s.phase == .idle else { throw .wrongState("the server was already started") }
      s.phase = .running
      var out = [(Listener, EventLoop)]()
      for (i, p) in s.pendingListeners.enumerated() {
        out.append((Listener(fd: p.fd, server: self, address: p.address, credentials: p.credentials),
                    group.loops[i % group.loops.count]))
      }
      s.pendingListeners = []
      s.listeners = out
      return out
    }
    for (listener, loop) in listeners {
      loop.execute { listener.register(on: loop) }
    }
  }

  // MARK: - Host answers (any thread)

  /// Validates a host operation on the call of `token` and queues it for the call's loop.
  /// Returns why it was refused (nothing changed then), or nil.
  public func answer(token: UInt64, _ op: CallOp) -> CallError? {
    if let size = op.messageSize, size > config.maxSendMessageSize {
      return .tooLarge("message of \(size) bytes is above the limit of \(config.maxSendMessageSize)")
    }
    guard let loop = group.loop(for: token) else { return .unknown }
    return loop.submit(token: token, owner: id, op)
  }

  /// Binds the host's tag to the call of `token`; see `swiftgrpc_call_set_tag`.
  public func setTag(token: UInt64, _ tag: UInt) -> CallError? {
    guard let loop = group.loop(for: token) else { return .unknown }
    return loop.registry.setTag(token, owner: id, tag)
  }

  // MARK: - Connections

  /// Counts a connection being handed to a loop; false once shutting down.
  func connectionOpened() -> Bool {
    state.withLock { s in
      guard s.phase == .running else { return false }
      s.connections += 1
      return true
    }
  }

  func connectionClosed() {
    settle { $0.connections -= 1 }
  }

  // MARK: - Shutdown

  /// Graceful shutdown, blocking; see `swiftgrpc_server_shutdown`. Must not run on a loop thread.
  public func shutdown(graceNanos: Int64) {
    beginShutdown(graceNanos: graceNanos)
    waitUntil { $0.phase == .stopped }
  }

  /// Graceful shutdown without waiting (any thread, a loop's included): stops accepting, sends
  /// every connection GOAWAY, fails the calls still running once `graceNanos` passed, and calls
  /// `onStopped` (on a loop thread, or here if the server is stopped already) once every
  /// connection is closed. A second call adds its `onStopped` to the first's shutdown.
  public func beginShutdown(graceNanos: Int64, onStopped: (@Sendable () -> Void)? = nil) {
    enum Step { case none, stoppedAlready, begin([(Listener, EventLoop)]) }
    let step = state.withLock { s -> Step in
      switch s.phase {
      case .idle:
        for p in s.pendingListeners {
          FileDescriptors.close(p.fd)
          if case .unix(let path) = p.address { unlink(path) }
        }
        s.pendingListeners = []
        s.phase = .stopped
        return .stoppedAlready
      case .running:
        s.phase = .shuttingDown
        s.loopsToDrain = group.loops.count
        if let onStopped { s.onStopped.append(onStopped) }
        let l = s.listeners
        s.listeners = []
        return .begin(l)
      case .shuttingDown:
        if let onStopped { s.onStopped.append(onStopped) }
        return .none
      case .stopped:
        return .stoppedAlready
      }
    }
    switch step {
    case .none:
      return
    case .stoppedAlready:
      state.lock.broadcast()
      onStopped?()
      return
    case .begin(let listeners):
      health?.enterGracefulShutdown()  // load balancers and probes hear it first
      for (listener, loop) in listeners {
        loop.execute {
          loop.unregister(fd: listener.fd)
          listener.close()
        }
      }
    }
    // Each loop sends GOAWAY on its connections after closing its listeners (its tasks run in
    // order); a connection handed to a loop later finds the server not serving and closes.
    for loop in group.loops {
      let queued = loop.execute { [self] in
        for c in loop.connections(of: self) { c.beginGracefulShutdown() }
        loopDrained()
      }
      if !queued { loopDrained() }
    }
    if graceNanos <= 0 {
      forceShutdown()
      return
    }
    let deadline = Time.deadline(after: graceNanos)
    if deadline == Time.never { return }
    let timerLoop = group.loops[0]
    timerLoop.execute { [self] in
      guard phase != .stopped else { return }
      graceTimer = timerLoop.schedule(at: deadline) { [self] in
        graceTimer = nil
        forceShutdown()
      }
    }
  }

  /// The grace has passed: every call still running fails UNAVAILABLE and its connection closes.
  private func forceShutdown() {
    for loop in group.loops {
      loop.execute { [self] in
        for c in loop.connections(of: self) {
          c.forceShutdown(Status(.unavailable, "server shutting down"))
        }
      }
    }
  }

  /// A loop has sent GOAWAY on its connections (or is stopped).
  private func loopDrained() {
    settle { $0.loopsToDrain -= 1 }
  }

  /// Applies a step of the shutdown's count down; the last one stops the server.
  private func settle(_ step: (inout State) -> Void) {
    let stopped = state.withLock { s -> Bool in
      step(&s)
      return s.stopIfDrained()
    }
    if stopped { finishShutdown() }
  }

  /// The server is stopped: waiters wake, the grace timer goes, `onStopped` callbacks run.
  private func finishShutdown() {
    let callbacks = state.withLock { s -> [@Sendable () -> Void] in
      let c = s.onStopped
      s.onStopped = []
      return c
    }
    state.lock.broadcast()
    let timerLoop = group.loops[0]
    timerLoop.execute { [self] in
      timerLoop.cancel(graceTimer)
      graceTimer = nil
    }
    for c in callbacks { c() }
  }

  @discardableResult
  private func waitUntil(deadline: Int64 = Int64.max, _ done: (State) -> Bool) -> Bool {
    state.lock.lock()
    defer { state.lock.unlock() }
    while !done(state.peek()) {
      if monotonicNanos() >= deadline { return false }
      _ = state.lock.wait(untilNanos: deadline)
    }
    return true
  }
}

extension EventLoop {
  /// The open connections of `server` on this loop (loop thread only).
  func connections(of server: Server) -> [ServerConnection] {
    assertInLoop()
    return allConnections.filter { $0.server === server }
  }
}
