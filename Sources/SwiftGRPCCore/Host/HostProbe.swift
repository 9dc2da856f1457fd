import Glibc

/// Calls of a unary method without a connection, for measuring the host boundary alone: each
/// round trip registers the probe under a fresh token, delivers its CALL event to the method's
/// sink (host fn or queue), and starts the next when the loop applies the host's completion.
/// Loop-bound, except for `outcome`, which the waiting thread reads.
final class HostProbe: Call {
  enum Outcome: Sendable {
    case finished(elapsedNanos: Int64)
    /// The sink refused the event (its queue was shut down).
    case refused
  }

  private let message: [UInt8]
  private var remaining: UInt64
  private var started: Int64 = 0
  /// Set when the waiting thread gave up: no further round trip starts.
  private var abandoned = false
  let outcome = Locked<Outcome?>(nil)

  init(loop: EventLoop, registration: MethodRegistration, serverID: UInt64, message: [UInt8],
       iterations: UInt64) {
    self.message = message
    self.remaining = iterations
    super.init(
      loop: loop, role: .server, kind: registration.kind, owner: serverID, sink: registration.sink,
      method: registration.path, maxReceiveMessageSize: 0, maxMetadataSize: 0)
  }

  /// Starts the first round trip (loop thread).
  func start() {
    started = monotonicNanos()
    next()
  }

  private func next() {
    // Not registered between round trips: no host thread can reach the state now.
    state = CallStateMachine(role: .server, kind: kind)
    loop.registry.register(self)
    let delivered = deliver(.call) { [message] e in
      e.peer = "inproc"
      e.message = message
    }
    if !delivered {
      _ = endForHost()
      finish(.refused)
    }
  }

  override func apply(_ op: CallOp) {
    guard case .complete = op else { return }
    _ = endForHost()
    if abandoned { return }  // completed just as the waiter gave up: start nothing more
    remaining -= 1
    if remaining == 0 {
      finish(.finished(elapsedNanos: monotonicNanos() - started))
    } else {
      next()
    }
  }

  /// Gives up on the round trip in flight (loop thread): its token is closed and the host is
  /// sent CANCELLED (DEADLINE_EXCEEDED), unless it completed in the meantime.
  func abandon() {
    abandoned = true
    if outcome.withLock({ $0 != nil }) { return }
    if endForHost().cancelHost {
      deliver(.cancelled) { $0.status = Status(.deadlineExceeded) }
    }
  }

  private func finish(_ result: Outcome) {
    outcome.withLock { $0 = result }
    outcome.lock.broadcast()
  }
}

extension Server {
  public enum ProbeError: Error, Equatable, Sendable {
    case wrongState(String)
    case invalidArgument(String)
    /// The host did not complete every round trip within the timeout.
    case timedOut
  }

  /// Calls the host of the unary `method` `iterations` times in process, without a connection,
  /// one round trip after the other, and returns the nanoseconds they took together: the cost
  /// of the host boundary (event to the host, its completion, the loop resuming the call).
  /// Blocks the calling thread (not a loop thread) for at most `timeoutNanos`; after that the
  /// round trip in flight is abandoned (its host is sent CANCELLED) and `.timedOut` thrown.
  public func probeHost(method: String, message: [UInt8], iterations: UInt64, timeoutNanos: Int64)
    throws(ProbeError) -> Int64
  {
    guard iterations > 0 else { throw .invalidArgument("iterations must be at least 1") }
    guard phase == .running else { throw .wrongState("the server is not running") }
    guard let registration = methods[method] else {
      throw .invalidArgument("method '\(method)' is not registered")
    }
    guard registration.kind == .unary else {
      throw .wrongState("only unary methods can be probed, '\(method)' is \(registration.kind)")
    }
    let loop = group.loops[0]
    let probe = HostProbe(loop: loop, registration: registration, serverID: id, message: message,
                          iterations: iterations)
    guard loop.execute({ probe.start() }) else { throw .wrongState("the runtime is stopping") }
    let deadline = Time.deadline(after: timeoutNanos)
    probe.outcome.lock.lock()
    while probe.outcome.peek() == nil && monotonicNanos() < deadline {
      _ = probe.outcome.lock.wait(untilNanos: deadline)
    }
    let result = probe.outcome.peek()
    probe.outcome.lock.unlock()
    switch result {
    case .finished(let elapsed): return elapsed
    case .refused: throw .wrongState("the method's queue no longer accepts events")
    case nil:
      _ = loop.execute { probe.abandon() }
      throw .timedOut
    }
  }
}
