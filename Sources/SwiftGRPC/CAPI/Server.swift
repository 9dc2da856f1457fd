import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

private func abiError(_ e: Server.ServerError) -> ABIError {
  switch e {
  case .wrongState(let m): return ABIError(SWIFTGRPC_E_WRONG_STATE, m)
  case .alreadyExists(let m): return ABIError(SWIFTGRPC_E_ALREADY_EXISTS, m)
  case .invalidArgument(let m): return ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, m)
  case .system(let m): return ABIError(SWIFTGRPC_E_SYSTEM, m)
  }
}

@_cdecl("swiftgrpc_server_create")
public func swiftgrpc_server_create(_ runtime: UInt64, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let r = try lookupRuntime(runtime)
    out.pointee = register(.server(ServerObject(server: Server(group: r.group), runtime: runtime)))
  }
}

@_cdecl("swiftgrpc_server_set_option")
public func swiftgrpc_server_set_option(_ server: UInt64, _ option: Int32, _ value: Int64) -> Int32 {
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    func check(_ range: ClosedRange<Int64>, _ name: String) throws(ABIError) {
      guard range.contains(value) else {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "\(name) value \(value) is outside \(range)")
      }
    }
    switch option {
    case SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE:
      try check(0...Int64(Int32.max), "SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE")
    case SWIFTGRPC_OPT_MAX_SEND_MESSAGE_SIZE:
      try check(0...Int64(UInt32.max), "SWIFTGRPC_OPT_MAX_SEND_MESSAGE_SIZE")
    case SWIFTGRPC_OPT_MAX_CONCURRENT_STREAMS:
      try check(1...Int64(Int32.max), "SWIFTGRPC_OPT_MAX_CONCURRENT_STREAMS")
    case SWIFTGRPC_OPT_MAX_METADATA_SIZE:
      try check(1024...Int64(Int32.max), "SWIFTGRPC_OPT_MAX_METADATA_SIZE")
    case SWIFTGRPC_OPT_HANDSHAKE_TIMEOUT_MS:
      try check(1...Int64.max, "SWIFTGRPC_OPT_HANDSHAKE_TIMEOUT_MS")
    case SWIFTGRPC_OPT_MAX_CONTROL_FRAMES_PER_SECOND:
      try check(0...Int64(Int32.max), "SWIFTGRPC_OPT_MAX_CONTROL_FRAMES_PER_SECOND")
    case SWIFTGRPC_OPT_DEFAULT_COMPRESSION:
      _ = try messageEncoding(value, "SWIFTGRPC_OPT_DEFAULT_COMPRESSION")
    case SWIFTGRPC_OPT_KEEPALIVE_TIME_MS, SWIFTGRPC_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS,
      SWIFTGRPC_OPT_MAX_CONNECTION_IDLE_MS, SWIFTGRPC_OPT_MAX_CONNECTION_AGE_MS,
      SWIFTGRPC_OPT_MAX_CONNECTION_AGE_GRACE_MS:
      try check(0...Int64.max, "option \(option)")
    case SWIFTGRPC_OPT_KEEPALIVE_TIMEOUT_MS:
      try check(1...Int64.max, "SWIFTGRPC_OPT_KEEPALIVE_TIMEOUT_MS")
    case SWIFTGRPC_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS:
      try check(0...1, "SWIFTGRPC_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS")
    case SWIFTGRPC_OPT_MAX_PING_STRIKES:
      try check(0...Int64(Int32.max), "SWIFTGRPC_OPT_MAX_PING_STRIKES")
    case SWIFTGRPC_OPT_SO_REUSEPORT:
      try check(0...1, "SWIFTGRPC_OPT_SO_REUSEPORT")
    case SWIFTGRPC_OPT_MAX_CONCURRENT_CALLS:
      try check(0...Int64(Int32.max), "SWIFTGRPC_OPT_MAX_CONCURRENT_CALLS")
    default:
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "unknown server option \(option)")
    }
    do throws(Server.ServerError) {
      try s.configure { c in
        switch option {
        case SWIFTGRPC_OPT_MAX_RECV_MESSAGE_SIZE: c.maxReceiveMessageSize = Int(value)
        case SWIFTGRPC_OPT_MAX_SEND_MESSAGE_SIZE: c.maxSendMessageSize = Int(value)
        case SWIFTGRPC_OPT_MAX_METADATA_SIZE: c.maxMetadataSize = Int(value)
        case SWIFTGRPC_OPT_HANDSHAKE_TIMEOUT_MS: c.handshakeTimeoutNanos = Time.nanos(millis: value)
        case SWIFTGRPC_OPT_MAX_CONTROL_FRAMES_PER_SECOND: c.maxControlFramesPerSecond = value
        case SWIFTGRPC_OPT_DEFAULT_COMPRESSION: c.defaultCompression = MessageEncoding(algorithm: value)!
        case SWIFTGRPC_OPT_KEEPALIVE_TIME_MS: c.keepaliveTimeNanos = offIfZero(value)
        case SWIFTGRPC_OPT_KEEPALIVE_TIMEOUT_MS: c.keepaliveTimeoutNanos = Time.nanos(millis: value)
        case SWIFTGRPC_OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS: c.keepalivePermitWithoutCalls = value == 1
        case SWIFTGRPC_OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS: c.minPingIntervalNanos = Time.nanos(millis: value)
        case SWIFTGRPC_OPT_MAX_PING_STRIKES: c.maxPingStrikes = Int(value)
        case SWIFTGRPC_OPT_MAX_CONNECTION_IDLE_MS: c.maxConnectionIdleNanos = offIfZero(value)
        case SWIFTGRPC_OPT_MAX_CONNECTION_AGE_MS: c.maxConnectionAgeNanos = offIfZero(value)
        case SWIFTGRPC_OPT_MAX_CONNECTION_AGE_GRACE_MS: c.maxConnectionAgeGraceNanos = offIfZero(value)
        case SWIFTGRPC_OPT_SO_REUSEPORT: c.reusePort = value == 1
        case SWIFTGRPC_OPT_MAX_CONCURRENT_CALLS: c.maxConcurrentCalls = Int(value)
        default: c.maxConcurrentStreams = UInt32(value)
        }
      }
    } catch {
      throw abiError(error)
    }
  }
}

/// Milliseconds as nanoseconds, 0 meaning off (`Time.never`).
private func offIfZero(_ millis: Int64) -> Int64 {
  millis == 0 ? Time.never : Time.nanos(millis: millis)
}

private func validateMethod(_ method: UnsafePointer<CChar>?, _ kind: Int32) throws(ABIError)
  -> (String, MethodKind)
{
  let path = try cString(method, "method")
  if let why = MethodPath.registrationError(path) { throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, why) }
  guard let k = MethodKind(rawValue: kind) else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "kind \(kind) is not a SWIFTGRPC_KIND_* value")
  }
  return (path, k)
}

/// Registers `method` of `kind` on `server` with the sink `makeSink` builds (given the server
/// object, once the arguments are valid).
private func register(
  _ server: UInt64, _ method: UnsafePointer<CChar>?, _ kind: Int32,
  _ makeSink: (ServerObject) throws(ABIError) -> EventSink
) -> Int32 {
  guarded { () throws(ABIError) in
    let so = try lookupServer(server)
    let (path, k) = try validateMethod(method, kind)
    let sink = try makeSink(so)
    do throws(Server.ServerError) {
      try so.server.register(MethodRegistration(path: path, kind: k, sink: sink))
    } catch {
      throw abiError(error)
    }
  }
}

@_cdecl("swiftgrpc_register_host_fn")
public func swiftgrpc_register_host_fn(
  _ server: UInt64, _ method: UnsafePointer<CChar>?, _ kind: Int32, _ fn: swiftgrpc_host_fn?,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  register(server, method, kind) { _ throws(ABIError) in
    guard let fn else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "fn is NULL") }
    return FunctionSink(fn: fn, userData: userData, server: server)
  }
}

@_cdecl("swiftgrpc_register_host_batch_fn")
public func swiftgrpc_register_host_batch_fn(
  _ server: UInt64, _ method: UnsafePointer<CChar>?, _ kind: Int32, _ fn: swiftgrpc_host_batch_fn?,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  register(server, method, kind) { so throws(ABIError) in
    guard let fn else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "fn is NULL") }
    return BatchSink(fn: fn, userData: userData, server: server, loops: so.server.group.loops.count)
  }
}

@_cdecl("swiftgrpc_register_host_queue")
public func swiftgrpc_register_host_queue(
  _ server: UInt64, _ method: UnsafePointer<CChar>?, _ kind: Int32, _ queue: UInt64
) -> Int32 {
  register(server, method, kind) { so throws(ABIError) in
    QueueSink(queue: try lookupQueue(queue, of: so.runtime).queue, server: server)
  }
}

@_cdecl("swiftgrpc_server_listen")
public func swiftgrpc_server_listen(
  _ server: UInt64, _ address: UnsafePointer<CChar>?, _ boundPort: UnsafeMutablePointer<Int32>?
) -> Int32 {
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    let a = try cString(address, "address")
    do throws(Server.ServerError) {
      let port = try s.listen(a)
      boundPort?.pointee = Int32(port)
    } catch {
      throw abiError(error)
    }
  }
}

@_cdecl("swiftgrpc_server_listen_secure")
public func swiftgrpc_server_listen_secure(
  _ server: UInt64, _ address: UnsafePointer<CChar>?, _ creds: UInt64,
  _ boundPort: UnsafeMutablePointer<Int32>?
) -> Int32 {
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    let a = try cString(address, "address")
    let c = try lookupServerCredentials(creds)
    do throws(Server.ServerError) {
      let port = try s.listen(a, credentials: c)
      boundPort?.pointee = Int32(port)
    } catch {
      throw abiError(error)
    }
  }
}

@_cdecl("swiftgrpc_server_start")
public func swiftgrpc_server_start(_ server: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    do throws(Server.ServerError) { try s.start() } catch { throw abiError(error) }
  }
}

@_cdecl("swiftgrpc_server_shutdown")
public func swiftgrpc_server_shutdown(_ server: UInt64, _ graceMs: Int64) -> Int32 {
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    if s.group.isLoopThread {
      throw ABIError(SWIFTGRPC_E_RECURSIVE_CALL, "swiftgrpc_server_shutdown called from a loop thread")
    }
    let grace = Time.nanos(millis: graceMs)
    s.shutdown(graceNanos: grace)
  }
}

@_cdecl("swiftgrpc_server_shutdown_notify")
public func swiftgrpc_server_shutdown_notify(
  _ server: UInt64, _ graceMs: Int64, _ queue: UInt64, _ tag: UnsafeMutableRawPointer?
) -> Int32 {
  guarded { () throws(ABIError) in
    let so = try lookupServer(server)
    var notify: (@Sendable () -> Void)? = nil
    if queue != 0 {
      let q = try lookupQueue(queue, of: so.runtime)
      let sink = QueueSink(queue: q.queue, server: server)
      let bits = UInt(bitPattern: tag)
      notify = {
        var e = CallEvent(type: .serverShutdown, token: 0, kind: .unary, method: "")
        e.tag = bits
        _ = sink.deliver(e)
      }
    }
    so.server.beginShutdown(graceNanos: Time.nanos(millis: graceMs), onStopped: notify)
  }
}

@_cdecl("swiftgrpc_server_destroy")
public func swiftgrpc_server_destroy(_ server: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    guard try wasIssued(server, "server") else { return }
    let s = try lookupServer(server).server
    if s.group.isLoopThread {
      throw ABIError(SWIFTGRPC_E_RECURSIVE_CALL, "swiftgrpc_server_destroy called from a loop thread")
    }
    s.shutdown(graceNanos: 0)
    _ = handles.withLock { $0.objects.removeValue(forKey: server) }
  }
}

@_cdecl("swiftgrpc_server_probe")
public func swiftgrpc_server_probe(
  _ server: UInt64, _ method: UnsafePointer<CChar>?, _ message: UnsafeRawPointer?, _ len: Int,
  _ iterations: UInt64, _ timeoutMs: Int64, _ outNanos: UnsafeMutablePointer<Int64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let outNanos else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out_elapsed_ns is NULL") }
    let s = try lookupServer(server).server
    let path = try cString(method, "method")
    let payload = try bytes(message, len, "message")
    if s.group.isLoopThread {
      throw ABIError(SWIFTGRPC_E_RECURSIVE_CALL, "swiftgrpc_server_probe called from a loop thread")
    }
    let timeout = timeoutMs < 0 ? Time.never : Time.nanos(millis: timeoutMs)
    do throws(Server.ProbeError) {
      outNanos.pointee = try s.probeHost(
        method: path, message: payload, iterations: iterations, timeoutNanos: timeout)
    } catch {
      switch error {
      case .wrongState(let m): throw ABIError(SWIFTGRPC_E_WRONG_STATE, m)
      case .invalidArgument(let m): throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, m)
      case .timedOut:
        throw ABIError(SWIFTGRPC_E_TIMEOUT, "the host did not complete every round trip in \(timeoutMs) ms")
      }
    }
  }
}

@_cdecl("swiftgrpc_server_enable_health")
public func swiftgrpc_server_enable_health(_ server: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    do throws(Server.ServerError) {
      _ = try s.enableHealth()
    } catch {
      throw abiError(error)
    }
  }
}

@_cdecl("swiftgrpc_server_set_health")
public func swiftgrpc_server_set_health(_ server: UInt64, _ service: UnsafePointer<CChar>?, _ status: Int32)
  -> Int32
{
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    let name = try cString(service, "service")
    guard let st = HealthService.ServingStatus(rawValue: status) else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "health status \(status) is not SWIFTGRPC_HEALTH_*")
    }
    guard let health = s.health else {
      throw ABIError(SWIFTGRPC_E_WRONG_STATE, "the health service is not enabled (swiftgrpc_server_enable_health)")
    }
    guard health.set(name, st) else {
      throw ABIError(SWIFTGRPC_E_WRONG_STATE, "the server is shutting down: health statuses stay NOT_SERVING")
    }
  }
}
