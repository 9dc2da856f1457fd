import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

/// Lays a `HostEvent` out as one malloc'd block: the `swiftgrpc_event`, its metadata array, and
/// every string and byte buffer it points to. Released with one `free` (`swiftgrpc_event_free`).
enum EventBlock {
  static func make(_ e: HostEvent) -> EventPointer? {
    let eventSize = MemoryLayout<swiftgrpc_event>.stride
    let mdSize = MemoryLayout<swiftgrpc_metadata>.stride * e.metadata.count
    var bytesSize = e.method.utf8.count + e.authority.utf8.count + e.peer.utf8.count + 3
    for m in e.metadata { bytesSize += m.key.utf8.count + m.value.count + 2 }
    bytesSize += (e.message?.count ?? 0) + 1
    guard let raw = malloc(eventSize + mdSize + bytesSize) else { return nil }
    let event = raw.bindMemory(to: swiftgrpc_event.self, capacity: 1)
    let md = (raw + eventSize).bindMemory(to: swiftgrpc_metadata.self, capacity: max(1, e.metadata.count))
    var cursor = (raw + eventSize + mdSize).assumingMemoryBound(to: CChar.self)

    func put(_ b: UnsafeRawBufferPointer) -> (UnsafePointer<CChar>, Int) {
      let start = cursor
      if b.count > 0 { memcpy(cursor, b.baseAddress!, b.count) }
      cursor[b.count] = 0
      cursor += b.count + 1
      return (UnsafePointer(start), b.count)
    }
    func put(_ s: String) -> (UnsafePointer<CChar>, Int) {
      var s = s
      return s.withUTF8 { put(UnsafeRawBufferPointer($0)) }
    }
    func put(_ b: [UInt8]) -> (UnsafePointer<CChar>, Int) {
      b.withUnsafeBytes { put($0) }
    }

    let method = put(e.method)
    let authority = put(e.authority)
    let peer = put(e.peer)
    for (i, m) in e.metadata.enumerated() {
      let k = put(m.key)
      let v = put(m.value)
      (md + i).initialize(to: swiftgrpc_metadata(key: k.0, key_len: k.1, value: v.0, value_len: v.1))
    }
    let message = put(e.message ?? [])
    event.initialize(
      to: swiftgrpc_event(
        type: e.type.rawValue, kind: e.kind.rawValue, token: e.token, server: 0,
        method: method.0, method_len: method.1, authority: authority.0,
        authority_len: authority.1, peer: peer.0, peer_len: peer.1,
        metadata: UnsafePointer(md), metadata_count: e.metadata.count, deadline_ns: e.deadline,
        message: message.0, message_len: message.1, has_message: e.message == nil ? 0 : 1,
        status_code: e.statusCode.rawValue))
    return event
  }
}

/// Push model: invokes the host's function on the loop thread with a borrowed event.
final class FunctionSink: HostSink, @unchecked Sendable {
  // @unchecked: a C function pointer and an opaque pointer the host vouches for.
  let fn: swiftgrpc_host_fn
  let userData: UnsafeMutableRawPointer?
  let serverHandle: UInt64

  init(fn: swiftgrpc_host_fn, userData: UnsafeMutableRawPointer?, serverHandle: UInt64) {
    self.fn = fn
    self.userData = userData
    self.serverHandle = serverHandle
  }

  func deliver(_ event: HostEvent) -> Bool {
    guard let block = EventBlock.make(event) else { return false }
    block.pointee.server = serverHandle
    fn(block, userData)
    free(block)
    return true
  }
}

/// Pull model: pushes an owned copy of the event onto a queue.
final class QueueSink: HostSink, @unchecked Sendable {
  // @unchecked: immutable references to thread-safe objects.
  let queue: EventQueue<EventPointer>
  let serverHandle: UInt64

  init(queue: EventQueue<EventPointer>, serverHandle: UInt64) {
    self.queue = queue
    self.serverHandle = serverHandle
  }

  func deliver(_ event: HostEvent) -> Bool {
    guard let block = EventBlock.make(event) else { return false }
    block.pointee.server = serverHandle
    return queue.push(block)
  }
}
