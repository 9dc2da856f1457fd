import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

/// Lays a `HostEvent` out as one malloc'd block: the `swiftgrpc_event`, its metadata array, and
/// every string and byte buffer it points to. Released with one `free` (`swiftgrpc_event_free`).
enum EventBlock {
  /// A server event.
  static func make(_ e: HostEvent) -> EventPointer? {
    make(
      type: e.type.rawValue, kind: e.kind, token: e.token, method: e.method,
      authority: e.authority, peer: e.peer, metadata: e.metadata, deadline: e.deadline,
      message: e.message, statusCode: e.statusCode.rawValue, statusMessage: "", trailers: [],
      channel: 0, tag: 0)
  }

  /// A client-call event.
  static func make(_ e: ClientEvent, method: String, channel: UInt64) -> EventPointer? {
    let isStatus = e.type == .status
    let code = e.type == .status || e.type == .sendDone ? e.status.code.rawValue : 0
    return make(
      type: e.type.rawValue, kind: e.kind, token: e.call, method: method, authority: "",
      peer: "", metadata: e.metadata, deadline: Int64.max, message: e.message, statusCode: code,
      statusMessage: isStatus ? e.status.message : "", trailers: e.trailers, channel: channel,
      tag: e.tag)
  }

  private static func make(
    type: Int32, kind: MethodKind, token: UInt64, method: String, authority: String,
    peer: String, metadata: [MetadataEntry], deadline: Int64, message: [UInt8]?,
    statusCode: Int32, statusMessage: String, trailers: [MetadataEntry], channel: UInt64,
    tag: UInt
  ) -> EventPointer? {
    let eventSize = MemoryLayout<swiftgrpc_event>.stride
    let mdCount = metadata.count + trailers.count
    let mdSize = MemoryLayout<swiftgrpc_metadata>.stride * mdCount
    var bytesSize =
      method.utf8.count + authority.utf8.count + peer.utf8.count + statusMessage.utf8.count + 4
    for m in metadata { bytesSize += m.key.utf8.count + m.value.count + 2 }
    for m in trailers { bytesSize += m.key.utf8.count + m.value.count + 2 }
    bytesSize += (message?.count ?? 0) + 1
    guard let raw = malloc(eventSize + mdSize + bytesSize) else { return nil }
    let event = raw.bindMemory(to: swiftgrpc_event.self, capacity: 1)
    let md = (raw + eventSize).bindMemory(to: swiftgrpc_metadata.self, capacity: max(1, mdCount))
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

    let methodText = put(method)
    let authorityText = put(authority)
    let peerText = put(peer)
    let statusText = put(statusMessage)
    for (i, m) in (metadata + trailers).enumerated() {
      let k = put(m.key)
      let v = put(m.value)
      (md + i).initialize(to: swiftgrpc_metadata(key: k.0, key_len: k.1, value: v.0, value_len: v.1))
    }
    let messageBytes = put(message ?? [])
    event.initialize(
      to: swiftgrpc_event(
        type: type, kind: kind.rawValue, token: token, server: 0,
        method: methodText.0, method_len: methodText.1, authority: authorityText.0,
        authority_len: authorityText.1, peer: peerText.0, peer_len: peerText.1,
        metadata: UnsafePointer(md), metadata_count: metadata.count, deadline_ns: deadline,
        message: messageBytes.0, message_len: messageBytes.1,
        has_message: message == nil ? 0 : 1, status_code: statusCode, channel: channel,
        tag: UnsafeMutableRawPointer(bitPattern: tag), status_message: statusText.0,
        status_message_len: statusText.1, trailers: UnsafePointer(md + metadata.count),
        trailer_count: trailers.count))
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

/// Client push model: invokes the host's function with a borrowed event.
final class FunctionClientSink: ClientSink, @unchecked Sendable {
  // @unchecked: a C function pointer plus immutable values.
  let fn: swiftgrpc_host_fn
  let channel: UInt64
  let method: String

  init(fn: swiftgrpc_host_fn, channel: UInt64, method: String) {
    self.fn = fn
    self.channel = channel
    self.method = method
  }

  func deliver(_ event: ClientEvent) -> Bool {
    guard let block = EventBlock.make(event, method: method, channel: channel) else { return false }
    fn(block, UnsafeMutableRawPointer(bitPattern: event.tag))
    free(block)
    return true
  }
}

/// Client pull model: pushes an owned copy of the event onto a queue.
final class QueueClientSink: ClientSink, @unchecked Sendable {
  // @unchecked: immutable references to thread-safe objects.
  let queue: EventQueue<EventPointer>
  let channel: UInt64
  let method: String

  init(queue: EventQueue<EventPointer>, channel: UInt64, method: String) {
    self.queue = queue
    self.channel = channel
    self.method = method
  }

  func deliver(_ event: ClientEvent) -> Bool {
    guard let block = EventBlock.make(event, method: method, channel: channel) else { return false }
    return queue.push(block)
  }
}
