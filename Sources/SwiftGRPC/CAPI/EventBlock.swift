import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

/// Lays a `HostEvent` out as one malloc'd block: the `swiftgrpc_event`, its metadata array, and
/// every string and byte buffer it points to. Released with one `free` (`swiftgrpc_event_free`).
enum EventBlock {
  /// An event of a server call (`server` is its handle) or of a client call (`channel`).
  /// `withMessage` false leaves the message out of the block (`message` is then set by the
  /// caller to bytes it keeps alive).
  static func make(_ e: CallEvent, server: UInt64, channel: UInt64, withMessage: Bool = true)
    -> EventPointer?
  {
    let code: Int32
    switch e.type {
    case .cancelled, .sendDone, .clientSendDone, .clientStatus: code = e.status.code.rawValue
    default: code = 0
    }
    return make(
      type: e.type.rawValue, kind: e.kind, token: e.token, method: e.method,
      authority: e.authority, peer: e.peer, metadata: e.metadata, deadline: e.deadline,
      message: e.message, copyMessage: withMessage, statusCode: code,
      statusMessage: e.type == .clientStatus ? e.status.message : "", trailers: e.trailers,
      auth: e.auth, server: server, channel: channel, tag: e.tag,
      messageFlags: e.messageCompressed ? SWIFTGRPC_MESSAGE_COMPRESSED : 0)
  }

  private static func make(
    type: Int32, kind: MethodKind, token: UInt64, method: String, authority: String,
    peer: String, metadata: [MetadataEntry], deadline: Int64, message: [UInt8]?, copyMessage: Bool,
    statusCode: Int32, statusMessage: String, trailers: [MetadataEntry], auth: [MetadataEntry],
    server: UInt64, channel: UInt64, tag: UInt, messageFlags: UInt32
  ) -> EventPointer? {
    let eventSize = MemoryLayout<swiftgrpc_event>.stride
    let mdCount = metadata.count + trailers.count + auth.count
    let mdSize = MemoryLayout<swiftgrpc_metadata>.stride * mdCount
    var bytesSize =
      method.utf8.count + authority.utf8.count + peer.utf8.count + statusMessage.utf8.count + 4
    for m in metadata { bytesSize += m.key.utf8.count + m.value.count + 2 }
    for m in trailers { bytesSize += m.key.utf8.count + m.value.count + 2 }
    for m in auth { bytesSize += m.key.utf8.count + m.value.count + 2 }
    bytesSize += (copyMessage ? message?.count ?? 0 : 0) + 1
    guard let raw = malloc(eventSize + mdSize + bytesSize) else { return nil }
    let event = raw.bindMemory(to: swiftgrpc_event.self, capacity: 1)
    let md = (raw + eventSize).bindMemory(to: swiftgrpc_metadata.self, capacity: max(1, mdCount))
    var out = BlockWriter(cursor: (raw + eventSize + mdSize).assumingMemoryBound(to: CChar.self))
    let methodText = out.put(method)
    let authorityText = out.put(authority)
    let peerText = out.put(peer)
    let statusText = out.put(statusMessage)
    let trailerEntries = out.put(metadata, at: md)
    let authEntries = out.put(trailers, at: trailerEntries)
    out.put(auth, at: authEntries)
    let messageBytes =
      copyMessage ? (message ?? []).withUnsafeBytes { out.put($0) } : out.put(UnsafeRawBufferPointer(start: nil, count: 0))
    event.initialize(
      to: swiftgrpc_event(
        type: type, kind: kind.rawValue, token: token, server: server,
        method: methodText.0, method_len: methodText.1, authority: authorityText.0,
        authority_len: authorityText.1, peer: peerText.0, peer_len: peerText.1,
        metadata: UnsafePointer(md), metadata_count: metadata.count, deadline_ns: deadline,
        message: messageBytes.0, message_len: messageBytes.1,
        has_message: message == nil ? 0 : 1, status_code: statusCode, channel: channel,
        tag: UnsafeMutableRawPointer(bitPattern: tag), status_message: statusText.0,
        status_message_len: statusText.1, trailers: UnsafePointer(md + metadata.count),
        trailer_count: trailers.count, auth: UnsafePointer(md + metadata.count + trailers.count),
        auth_count: auth.count, message_flags: messageFlags))
    return event
  }
}

/// Copies NUL-terminated strings into an event block, one after the other.
private struct BlockWriter {
  var cursor: UnsafeMutablePointer<CChar>

  mutating func put(_ b: UnsafeRawBufferPointer) -> (UnsafePointer<CChar>, Int) {
    let start = cursor
    if b.count > 0 { memcpy(cursor, b.baseAddress!, b.count) }
    cursor[b.count] = 0
    cursor += b.count + 1
    return (UnsafePointer(start), b.count)
  }

  /// Copies `list`'s keys and values, describing them in the entries from `md` on; returns
  /// the entry after the last.
  @discardableResult
  mutating func put(
    _ list: [MetadataEntry], at md: UnsafeMutablePointer<swiftgrpc_metadata>
  ) -> UnsafeMutablePointer<swiftgrpc_metadata> {
    var next = md
    for m in list {
      let k = put(m.key)
      let v = m.value.withUnsafeBytes { put($0) }
      next.initialize(to: swiftgrpc_metadata(key: k.0, key_len: k.1, value: v.0, value_len: v.1))
      next += 1
    }
    return next
  }

  mutating func put(_ s: String) -> (UnsafePointer<CChar>, Int) {
    if let r = s.utf8.withContiguousStorageIfAvailable({ put(UnsafeRawBufferPointer($0)) }) {
      return r
    }
    var s = s
    return s.withUTF8 { put(UnsafeRawBufferPointer($0)) }
  }
}

/// Push model: invokes the host's function on the loop thread with a borrowed event. Server
/// calls pass the registration's `user_data`, client calls their tag.
final class FunctionSink: EventSink, @unchecked Sendable {
  // @unchecked: a C function pointer and an opaque pointer the host vouches for.
  let fn: swiftgrpc_host_fn
  let userData: UnsafeMutableRawPointer?
  let server: UInt64
  let channel: UInt64

  init(fn: swiftgrpc_host_fn, userData: UnsafeMutableRawPointer?, server: UInt64 = 0,
       channel: UInt64 = 0) {
    self.fn = fn
    self.userData = userData
    self.server = server
    self.channel = channel
  }

  /// Messages from this size on are lent to the host fn in place rather than copied into the
  /// event block (the event is borrowed for the call anyway).
  static let lendFrom = 64 * 1024

  func deliver(_ event: CallEvent) -> Bool {
    let lend = (event.message?.count ?? 0) >= FunctionSink.lendFrom
    guard let block = EventBlock.make(event, server: server, channel: channel, withMessage: !lend)
    else { return false }
    defer { free(block) }
    let data = channel != 0 ? UnsafeMutableRawPointer(bitPattern: event.tag) : userData
    if lend, let message = event.message {
      message.withUnsafeBytes { raw in
        block.pointee.message = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
        block.pointee.message_len = raw.count
        fn(block, data)
      }
    } else {
      fn(block, data)
    }
    return true
  }
}

/// Push model in batches: keeps an owned copy of each event a loop delivers and hands the host
/// function all of them at the end of the loop's iteration, then frees them.
final class BatchSink: EventSink, @unchecked Sendable {
  // @unchecked: a C function pointer and an opaque pointer the host vouches for; each pending
  // list is touched only on its loop's thread.
  let fn: swiftgrpc_host_batch_fn
  let userData: UnsafeMutableRawPointer?
  let server: UInt64
  private final class Pending {
    var events: [UnsafePointer<swiftgrpc_event>?] = []
    /// The previous batch's array, emptied, reused for the next (no allocation per batch).
    var spare: [UnsafePointer<swiftgrpc_event>?] = []
  }
  private let pending: [Pending]

  init(fn: swiftgrpc_host_batch_fn, userData: UnsafeMutableRawPointer?, server: UInt64, loops: Int) {
    self.fn = fn
    self.userData = userData
    self.server = server
    pending = (0..<loops).map { _ in Pending() }
  }

  /// Not on a loop's iteration: a batch of one, now.
  func deliver(_ event: CallEvent) -> Bool {
    guard let block = EventBlock.make(event, server: server, channel: 0) else { return false }
    var one: UnsafePointer<swiftgrpc_event>? = UnsafePointer(block)
    fn(&one, 1, userData)
    free(block)
    return true
  }

  func deliver(_ event: CallEvent, on loop: EventLoop) -> Bool {
    guard loop.index < pending.count,
      let block = EventBlock.make(event, server: server, channel: 0)
    else { return false }
    let p = pending[loop.index]
    if p.events.isEmpty { loop.atEndOfIteration { [self] in flush(p) } }
    p.events.append(UnsafePointer(block))
    return true
  }

  private func flush(_ p: Pending) {
    var batch: [UnsafePointer<swiftgrpc_event>?] = []
    swap(&batch, &p.spare)
    swap(&batch, &p.events)  // events delivered while `fn` runs go to the next batch
    batch.withUnsafeBufferPointer { fn($0.baseAddress!, $0.count, userData) }
    for e in batch { free(UnsafeMutableRawPointer(mutating: e)) }
    batch.removeAll(keepingCapacity: true)
    p.spare = batch
  }
}

/// Pull model: pushes an owned copy of the event onto a queue. A server CALL event can be taken
/// back while it waits there (its call was cancelled before the host took it).
final class QueueSink: EventSink, @unchecked Sendable {
  // @unchecked: immutable references to thread-safe objects.
  let queue: EventQueue<QueuedEvent>
  let server: UInt64
  let channel: UInt64

  init(queue: EventQueue<QueuedEvent>, server: UInt64 = 0, channel: UInt64 = 0) {
    self.queue = queue
    self.server = server
    self.channel = channel
  }

  func deliver(_ event: CallEvent) -> Bool {
    guard let block = EventBlock.make(event, server: server, channel: channel) else { return false }
    return queue.push(QueuedEvent(block: block, hostTag: event.hostTag),
                      retractionKey: event.type == .call ? event.token : 0)
  }

  func retract(token: UInt64) -> Bool {
    queue.retract(token)
  }
}
