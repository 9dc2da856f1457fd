/// The calls of one loop that hosts address: server calls by token, client calls by id (one
/// numbering: `seq << 8 | loop index`, never reused within the runtime). A host operation is
/// validated here, on the host's thread, against the call's `CallStateMachine`; the loop records
/// what the wire did under the same lock. The lock is held only for the transition itself:
/// effects (events, nghttp2 calls) are applied after it is released.
final class CallRegistry: @unchecked Sendable {
  // @unchecked: every field, and the `state` of every registered call, is touched only under
  // `lock`. The `Call` objects themselves are loop-bound: the registry only hands them back to
  // their loop (inside a queued `Work` item).
  private let lock = Lock()
  private var calls: [UInt64: Call] = [:]
  private var nextSeq: UInt64 = 1
  private let loopIndex: UInt64

  init(loopIndex: Int) {
    self.loopIndex = UInt64(loopIndex)
  }

  /// Issues the call's token (its id) and registers it. Loop thread, or a host starting a
  /// client call.
  @discardableResult
  func register(_ call: Call) -> UInt64 {
    lock.withLock {
      let token = nextSeq << 8 | loopIndex
      nextSeq += 1
      call.token = token
      calls[token] = call
      return token
    }
  }

  /// Validates a host operation for `token`, owned by `owner` (a server's or channel's id), and
  /// records it in the call's state. Returns the call to apply it on, or why it is refused (the
  /// state is then unchanged). Any thread.
  func validate(_ token: UInt64, owner: UInt64, _ op: CallOp) -> Result<Call, CallError> {
    lock.withLock {
      guard let call = calls[token], call.owner == owner else {
        return .failure(missing(token))
      }
      do throws(CallStateMachine.Refusal) {
        try call.state.host(op)
      } catch {
        switch error {
        case .ended: return .failure(.ended)
        case .alreadyCompleted: return .failure(.alreadyCompleted)
        case .wrongState(let m): return .failure(.wrongState(m))
        }
      }
      return .success(call)
    }
  }

  /// Binds the host's tag to the server call `token` (any thread): events delivered or taken
  /// from now on carry it. Refused like an operation on an ended or unknown call.
  func setTag(_ token: UInt64, owner: UInt64, _ tag: UInt) -> CallError? {
    lock.withLock {
      guard let call = calls[token], call.owner == owner, let cell = call.hostTag else {
        return missing(token)
      }
      cell.store(tag)
      return nil
    }
  }

  /// Under the lock: why `token` names no call of its owner: ended (issued here, now gone) or
  /// unknown.
  private func missing(_ token: UInt64) -> CallError {
    let seq = token >> 8
    let issued = seq > 0 && seq < nextSeq && token & 0xFF == loopIndex
    return issued && calls[token] == nil ? .ended : .unknown
  }

  /// Runs a transition of `call`'s state (loop thread).
  @inline(__always)
  func update<T>(_ call: Call, _ body: (inout CallStateMachine) -> T) -> T {
    lock.withLock { body(&call.state) }
  }

  /// Ends `call` for its host and forgets its token: later operations are refused as ended.
  /// Returns what the host still waited for (empty if it had ended already).
  func end(_ call: Call) -> CallStateMachine.Ending {
    lock.withLock {
      if call.token != 0 { calls[call.token] = nil }
      return call.state.end()
    }
  }

  /// Calls registered and not yet ended (for tests and diagnostics).
  var count: Int { lock.withLock { calls.count } }
}

extension EventLoop {
  /// Validates a host operation against the call's state and queues it for the loop; any
  /// thread. Returns why it was refused, or nil.
  func submit(token: UInt64, owner: UInt64, _ op: CallOp) -> CallError? {
    switch registry.validate(token, owner: owner, op) {
    case .failure(let error):
      return error
    case .success(let call):
      return enqueue(.op(call, op)) ? nil : .ended
    }
  }
}
