import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

@_cdecl("swiftgrpc_queue_create")
public func swiftgrpc_queue_create(_ runtime: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    _ = try lookupRuntime(runtime)
    out.pointee = register(.queue(QueueObject(runtime: runtime)))
  }
}

@_cdecl("swiftgrpc_queue_next")
public func swiftgrpc_queue_next(
  _ queue: UInt64, _ timeoutMs: Int64, _ out: UnsafeMutablePointer<UnsafeMutablePointer<swiftgrpc_event>?>?
) -> Int32 {
  guard let out else { return fail(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
  out.pointee = nil
  let q: QueueObject
  do { q = try lookupQueue(queue) } catch { return fail(error.code, error.message) }
  let deadline = timeoutMs < 0 ? Time.never : Time.deadline(after: Time.nanos(millis: timeoutMs))
  switch q.queue.next(deadline: deadline) {
  case .element(let e):
    out.pointee = e.take()
    return SWIFTGRPC_OK
  case .timedOut:
    return fail(SWIFTGRPC_E_TIMEOUT, "no event within \(timeoutMs) ms")
  case .shutDown:
    return fail(SWIFTGRPC_E_SHUTDOWN, "the queue is shut down")
  }
}

@_cdecl("swiftgrpc_queue_next_batch")
public func swiftgrpc_queue_next_batch(
  _ queue: UInt64, _ timeoutMs: Int64, _ out: UnsafeMutablePointer<UnsafeMutablePointer<swiftgrpc_event>?>?,
  _ max: Int, _ outCount: UnsafeMutablePointer<Int>?
) -> Int32 {
  guard let out, let outCount else { return fail(SWIFTGRPC_E_NULL_ARGUMENT, "out or out_count is NULL") }
  outCount.pointee = 0
  guard max > 0 else { return fail(SWIFTGRPC_E_INVALID_ARGUMENT, "max must be at least 1") }
  let q: QueueObject
  do { q = try lookupQueue(queue) } catch { return fail(error.code, error.message) }
  let deadline = timeoutMs < 0 ? Time.never : Time.deadline(after: Time.nanos(millis: timeoutMs))
  var taken: [QueuedEvent] = []
  taken.reserveCapacity(Swift.min(max, 256))
  switch q.queue.nextBatch(deadline: deadline, max: max, into: &taken) {
  case .element:
    for (i, e) in taken.enumerated() { out[i] = e.take() }
    outCount.pointee = taken.count
    return SWIFTGRPC_OK
  case .timedOut:
    return fail(SWIFTGRPC_E_TIMEOUT, "no event within \(timeoutMs) ms")
  case .shutDown:
    return fail(SWIFTGRPC_E_SHUTDOWN, "the queue is shut down")
  }
}

@_cdecl("swiftgrpc_queue_fd")
public func swiftgrpc_queue_fd(_ queue: UInt64, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let q = try lookupQueue(queue)
    do { out.pointee = try q.queue.readinessFD() } catch {
      throw ABIError(SWIFTGRPC_E_SYSTEM, "\(error)")
    }
  }
}

@_cdecl("swiftgrpc_queue_shutdown")
public func swiftgrpc_queue_shutdown(_ queue: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    try lookupQueue(queue).queue.shutdown()
  }
}

@_cdecl("swiftgrpc_queue_destroy")
public func swiftgrpc_queue_destroy(_ queue: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    guard try wasIssued(queue, "queue") else { return }
    let q = try lookupQueue(queue)
    q.queue.close()
    _ = handles.withLock { $0.objects.removeValue(forKey: queue) }
  }
}

@_cdecl("swiftgrpc_event_free")
public func swiftgrpc_event_free(_ event: UnsafeMutablePointer<swiftgrpc_event>?) {
  free(event)
}
