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

final class QueueObject: @unchecked Sendable {
  // @unchecked: immutable references to thread-safe objects.
  let queue: EventQueue<EventPointer>
  let runtime: UInt64
  init(runtime: UInt64) {
    self.runtime = runtime
    queue = EventQueue(onDrop: { free($0) })
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
  if t.objects[id] == nil { return "\(what) handle \(id) was destroyed" }
  return "handle \(id) is not a \(what)"
}

func lookupRuntime(_ id: UInt64) throws(ABIError) -> RuntimeObject {
  try handles.withLock { t throws(ABIError) in
    guard case .runtime(let r)? = t.objects[id] else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, "runtime", t))
    }
    return r
  }
}

func lookupServer(_ id: UInt64) throws(ABIError) -> ServerObject {
  try handles.withLock { t throws(ABIError) in
    guard case .server(let s)? = t.objects[id] else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, "server", t))
    }
    return s
  }
}

func lookupQueue(_ id: UInt64) throws(ABIError) -> QueueObject {
  try handles.withLock { t throws(ABIError) in
    guard case .queue(let q)? = t.objects[id] else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, "queue", t))
    }
    return q
  }
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
  try handles.withLock { t throws(ABIError) in
    guard case .channel(let c)? = t.objects[id] else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, "channel", t))
    }
    return c
  }
}

func lookupServerCredentials(_ id: UInt64) throws(ABIError) -> ServerCredentials {
  try handles.withLock { t throws(ABIError) in
    guard case .serverCredentials(let c)? = t.objects[id] else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, "server credentials", t))
    }
    return c
  }
}

func lookupChannelCredentials(_ id: UInt64) throws(ABIError) -> ChannelCredentials {
  try handles.withLock { t throws(ABIError) in
    guard case .channelCredentials(let c)? = t.objects[id] else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, "channel credentials", t))
    }
    return c
  }
}

func lookupCallCredentials(_ id: UInt64) throws(ABIError) -> CallCredentials {
  try handles.withLock { t throws(ABIError) in
    guard case .callCredentials(let c)? = t.objects[id] else {
      throw ABIError(SWIFTGRPC_E_BAD_HANDLE, describe(id, "call credentials", t))
    }
    return c
  }
}
