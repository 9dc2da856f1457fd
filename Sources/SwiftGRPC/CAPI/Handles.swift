import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

/// A runtime handle's object: its loops and what was created on it.
final class RuntimeObject: @unchecked Sendable {
  // @unchecked: `group` is immutable; children are tracked in the registry, under its lock.
  let group: EventLoopGroup
  init(group: EventLoopGroup) { self.group = group }
}

final class ServerObject: @unchecked Sendable {
  // @unchecked: immutable references to thread-safe objects.
  let server: Server
  let runtime: UInt64
  init(server: Server, runtime: UInt64) {
    self.server = server
    self.runtime = runtime
  }
}

typealias EventPointer = UnsafeMutablePointer<swiftgrpc_event>

/// An event waiting on a queue. A server call's event takes the host's tag when it is taken, so
/// that one taken after swiftgrpc_call_set_tag carries the tag even if it was queued before.
struct QueuedEvent {
  let block: EventPointer
  let hostTag: HostTag?

  /// The event, handed to the host that took it.
  func take() -> EventPointer {
    if let hostTag { block.pointee.tag = UnsafeMutableRawPointer(bitPattern: hostTag.load()) }
    return block
  }
}

final class QueueObject: @unchecked Sendable {
  // @unchecked: immutable references to thread-safe objects.
  let queue: EventQueue<QueuedEvent>
  let runtime: UInt64
  init(runtime: UInt64) {
    self.runtime = runtime
    queue = EventQueue(onDrop: { free($0.block) })
  }
}

final class ChannelObject: @unchecked Sendable {
  // @unchecked: immutable references to thread-safe objects.
  let channel: Channel
  let runtime: UInt64
  init(channel: Channel, runtime: UInt64) {
    self.channel = channel
    self.runtime = runtime
  }
}

enum HandleObject {
  case runtime(RuntimeObject)
  case server(ServerObject)
  case queue(QueueObject)
  case channel(ChannelObject)
  /// Credentials belong to no runtime; servers and channels keep what they use alive.
  case serverCredentials(ServerCredentials)
  case channelCredentials(ChannelCredentials)
  case callCredentials(CallCredentials)

  var runtimeID: UInt64? {
    switch self {
    case .runtime, .serverCredentials, .channelCredentials, .callCredentials: return nil
    case .server(let s): return s.runtime
    case .queue(let q): return q.runtime
    case .channel(let c): return c.runtime
    }
  }
}

/// The locked registry behind every handle: monotonic ids, never reused, 0 = none, checked by
/// type on every lookup.
struct HandleTable {
  var objects: [UInt64: HandleObject] = [:]
  var next: UInt64 = 1
  /// In a forked child: the handles of the runtimes made before fork() and of their servers,
  /// channels and queues, and those objects, kept (never released: their loop threads do not
  /// exist here, and tearing them down would touch the parent's connections).
  var abandonedIDs = Set<UInt64>()
  var abandoned: [HandleObject] = []

  /// Abandons every runtime-bound object: run in the child after fork(), lock held.
  mutating func abandonAfterFork() {
    for (id, object) in objects {
      if case .runtime = object {} else if object.runtimeID == nil { continue }
      abandonedIDs.insert(id)
      abandoned.append(object)
      objects[id] = nil
    }
  }
}

let handles = Locked(HandleTable())

func register(_ object: HandleObject) -> UInt64 {
  handles.withLock { t in
    let id = t.next
    t.next += 1
    t.objects[id] = object
    return id
  }
}

func describe(_ id: UInt64, _ what: String, _ t: HandleTable) -> String {
  if id == 0 { return "\(what) handle is 0" }
  if id >= t.next { return "\(what) handle \(id) was never issued" }
  if t.abandonedIDs.contains(id) {
    return "\(what) handle \(id) was created before fork(); a forked child makes its own"
  }
  if t.objects[id] == nil { return "\(what) handle \(id) was destroyed" }
  return "handle \(id) is not a \(what)"
}

/// The object of handle `id` that `extract` finds (the handle's kind), or BAD_HANDLE saying
/// why not (0, never issued, destroyed, another kind).
private func lookup<T>(_ id: UInt64, _ what: String, _ extract: (HandleObject) -> T?) throws(ABIError) -> T {
  try handles.withLock { t throws(ABIError) in
    guard let object = t.objects[id], let found = extract(object) else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, what, t))
    }
    return found
  }
}

func lookupRuntime(_ id: UInt64) throws(ABIError) -> RuntimeObject {
  try lookup(id, "runtime") { if case .runtime(let o) = $0 { o } else { nil } }
}

func lookupServer(_ id: UInt64) throws(ABIError) -> ServerObject {
  try lookup(id, "server") { if case .server(let o) = $0 { o } else { nil } }
}

func lookupQueue(_ id: UInt64) throws(ABIError) -> QueueObject {
  try lookup(id, "queue") { if case .queue(let o) = $0 { o } else { nil } }
}

/// A queue that must belong to `runtime` (a server's or channel's).
func lookupQueue(_ id: UInt64, of runtime: UInt64) throws(ABIError) -> QueueObject {
  let q = try lookupQueue(id)
  guard q.runtime == runtime else {
    throw ABIError(SWIFTGRPC_E_BAD_HANDLE, "queue \(id) belongs to another runtime")
  }
  return q
}

/// For destroy functions: nil if the handle is 0 or already destroyed (idempotent), an error if
/// it was never issued.
func wasIssued(_ id: UInt64, _ what: String) throws(ABIError) -> Bool {
  try handles.withLock { t throws(ABIError) in
    if id == 0 || (id < t.next && t.objects[id] == nil) { return false }
    if id >= t.next { throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, what, t)) }
    return true
  }
}

func lookupChannel(_ id: UInt64) throws(ABIError) -> ChannelObject {
  try lookup(id, "channel") { if case .channel(let o) = $0 { o } else { nil } }
}

func lookupServerCredentials(_ id: UInt64) throws(ABIError) -> ServerCredentials {
  try lookup(id, "server credentials") { if case .serverCredentials(let o) = $0 { o } else { nil } }
}

func lookupChannelCredentials(_ id: UInt64) throws(ABIError) -> ChannelCredentials {
  try lookup(id, "channel credentials") { if case .channelCredentials(let o) = $0 { o } else { nil } }
}

func lookupCallCredentials(_ id: UInt64) throws(ABIError) -> CallCredentials {
  try lookup(id, "call credentials") { if case .callCredentials(let o) = $0 { o } else { nil } }
}
