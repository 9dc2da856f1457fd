import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

private let millisLimit: Int64 = Int64.max / 1_000_000

private func millis(_ v: Int64, _ name: String, allowZero: Bool = true) throws(ABIError) -> Int64 {
  guard v >= 0, v <= millisLimit, allowZero || v > 0 else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "\(name) \(v) is out of range")
  }
  return v * 1_000_000
}

private func channelConfig(_ args: UnsafePointer<swiftgrpc_channel_arg>?, _ count: Int)
  throws(ABIError) -> Channel.Config
{
  var c = Channel.Config()
  if count == 0 { return c }
  guard count > 0, count <= 1000 else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "arg_count \(count) is out of range")
  }
  guard let args else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "args is NULL with arg_count \(count)") }
  for i in 0..<count {
    let a = args[i]
    let v = a.int_value
    switch a.key {
    case SWIFTGRPC_CHANNEL_CONNECT_TIMEOUT_MS:
      c.connectTimeoutNanos = try millis(v, "CONNECT_TIMEOUT_MS", allowZero: false)
    case SWIFTGRPC_CHANNEL_INITIAL_BACKOFF_MS:
      c.initialBackoffNanos = try millis(v, "INITIAL_BACKOFF_MS", allowZero: false)
    case SWIFTGRPC_CHANNEL_MAX_BACKOFF_MS:
      c.maxBackoffNanos = try millis(v, "MAX_BACKOFF_MS", allowZero: false)
    case SWIFTGRPC_CHANNEL_KEEPALIVE_TIME_MS:
      let n = try millis(v, "KEEPALIVE_TIME_MS")
      c.keepaliveTimeNanos = n == 0 ? Int64.max : n
    case SWIFTGRPC_CHANNEL_KEEPALIVE_TIMEOUT_MS:
      c.keepaliveTimeoutNanos = try millis(v, "KEEPALIVE_TIMEOUT_MS", allowZero: false)
    case SWIFTGRPC_CHANNEL_KEEPALIVE_PERMIT_WITHOUT_CALLS:
      guard v == 0 || v == 1 else {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "KEEPALIVE_PERMIT_WITHOUT_CALLS must be 0 or 1")
      }
      c.keepalivePermitWithoutCalls = v == 1
    case SWIFTGRPC_CHANNEL_MAX_SEND_MESSAGE_SIZE:
      guard v >= 0, v <= Int64(UInt32.max) else {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "MAX_SEND_MESSAGE_SIZE \(v) is out of range")
      }
      c.maxSendMessageSize = Int(v)
    case SWIFTGRPC_CHANNEL_MAX_RECV_MESSAGE_SIZE:
      guard v >= 0, v <= Int64(UInt32.max) else {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "MAX_RECV_MESSAGE_SIZE \(v) is out of range")
      }
      c.maxReceiveMessageSize = Int(v)
    case SWIFTGRPC_CHANNEL_DEFAULT_TIMEOUT_MS:
      let n = try millis(v, "DEFAULT_TIMEOUT_MS")
      c.defaultTimeoutNanos = n == 0 ? nil : n
    case SWIFTGRPC_CHANNEL_USER_AGENT:
      let ua = try cString(a.string_value, "USER_AGENT string_value")
      if let e = MetadataValidation.validate(value: Array(ua.utf8), key: "user-agent") {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "USER_AGENT: \(e)")
      }
      c.userAgent = ua
    case SWIFTGRPC_CHANNEL_LB_POLICY:
      guard let lb = Channel.LoadBalancing(rawValue: Int32(truncatingIfNeeded: v)), v >= 0, v <= 1
      else {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "LB_POLICY \(v) is not SWIFTGRPC_LB_*")
      }
      c.loadBalancing = lb
    case SWIFTGRPC_CHANNEL_AUTHORITY:
      let authority = try cString(a.string_value, "AUTHORITY string_value")
      if authority.isEmpty || MetadataValidation.validate(value: Array(authority.utf8), key: ":authority") != nil
        || authority.contains(" ")
      {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "AUTHORITY '\(authority)' is not a valid authority")
      }
      c.authority = authority
    case SWIFTGRPC_CHANNEL_MAX_METADATA_SIZE:
      guard v >= 1024, v <= Int64(Int32.max) else {
        throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "MAX_METADATA_SIZE \(v) is outside 1024...\(Int32.max)")
      }
      c.maxMetadataSize = Int(v)
    case SWIFTGRPC_CHANNEL_DEFAULT_COMPRESSION:
      c.defaultCompression = try messageEncoding(v, "DEFAULT_COMPRESSION")
    case SWIFTGRPC_CHANNEL_MIN_TIME_BETWEEN_RESOLUTIONS_MS:
      c.minTimeBetweenResolutionsNanos = try millis(v, "MIN_TIME_BETWEEN_RESOLUTIONS_MS")
    default:
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "args[\(i)]: unknown channel argument key \(a.key)")
    }
  }
  return c
}

@_cdecl("swiftgrpc_channel_create")
public func swiftgrpc_channel_create(
  _ runtime: UInt64, _ target: UnsafePointer<CChar>?, _ args: UnsafePointer<swiftgrpc_channel_arg>?,
  _ argCount: Int, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in try createChannel(runtime, target, nil, args, argCount, out) }
}

@_cdecl("swiftgrpc_channel_create_secure")
public func swiftgrpc_channel_create_secure(
  _ runtime: UInt64, _ target: UnsafePointer<CChar>?, _ creds: UInt64,
  _ args: UnsafePointer<swiftgrpc_channel_arg>?, _ argCount: Int, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    let c = try lookupChannelCredentials(creds)
    try createChannel(runtime, target, c, args, argCount, out)
  }
}

private func createChannel(
  _ runtime: UInt64, _ target: UnsafePointer<CChar>?, _ credentials: ChannelCredentials?,
  _ args: UnsafePointer<swiftgrpc_channel_arg>?, _ argCount: Int, _ out: UnsafeMutablePointer<UInt64>?
) throws(ABIError) {
  guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
  let text = try cString(target, "target")
  var config = try channelConfig(args, argCount)
  config.credentials = credentials
  let r = try lookupRuntime(runtime)
  do throws(Channel.ChannelError) {
    let channel = try Channel(target: text, group: r.group, config: config)
    out.pointee = register(.channel(ChannelObject(channel: channel, runtime: runtime)))
  } catch {
    if case .invalidTarget(let m) = error { throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, m) }
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "\(error)")
  }
}

@_cdecl("swiftgrpc_channel_state")
public func swiftgrpc_channel_state(
  _ channel: UInt64, _ tryToConnect: Int32, _ outState: UnsafeMutablePointer<Int32>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let outState else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out_state is NULL") }
    outState.pointee = try lookupChannel(channel).channel.state(tryToConnect: tryToConnect != 0).rawValue
  }
}

@_cdecl("swiftgrpc_channel_wait_state_change")
public func swiftgrpc_channel_wait_state_change(
  _ channel: UInt64, _ lastState: Int32, _ timeoutMs: Int64, _ outState: UnsafeMutablePointer<Int32>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let outState else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out_state is NULL") }
    guard let last = ConnectivityState(rawValue: lastState) else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "last_state \(lastState) is not SWIFTGRPC_STATE_*")
    }
    let c = try lookupChannel(channel).channel
    if c.loop.inLoop {
      throw ABIError(SWIFTGRPC_E_RECURSIVE_CALL, "swiftgrpc_channel_wait_state_change called on the channel's loop thread")
    }
    let deadline = timeoutMs < 0 ? Time.never : Time.deadline(after: Time.nanos(millis: timeoutMs))
    guard let state = c.waitForStateChange(from: last, deadline: deadline) else {
      throw ABIError(SWIFTGRPC_E_TIMEOUT, "the channel state did not change within \(timeoutMs) ms")
    }
    outState.pointee = state.rawValue
  }
}

@_cdecl("swiftgrpc_channel_close")
public func swiftgrpc_channel_close(_ channel: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    try lookupChannel(channel).channel.close()
  }
}

@_cdecl("swiftgrpc_channel_destroy")
public func swiftgrpc_channel_destroy(_ channel: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    guard try wasIssued(channel, "channel") else { return }
    let c = try lookupChannel(channel)
    if let r = try? lookupRuntime(c.runtime), r.group.isLoopThread {
      throw ABIError(SWIFTGRPC_E_RECURSIVE_CALL, "swiftgrpc_channel_destroy called from a loop thread")
    }
    c.channel.destroy()
    _ = handles.withLock { $0.objects.removeValue(forKey: channel) }
  }
}

// MARK: - Calls

@_cdecl("swiftgrpc_client_call_start")
public func swiftgrpc_client_call_start(
  _ channel: UInt64, _ method: UnsafePointer<CChar>?, _ kind: Int32,
  _ md: UnsafePointer<swiftgrpc_metadata>?, _ mdCount: Int, _ message: UnsafeRawPointer?,
  _ messageLen: Int, _ deadline: Int64, _ flags: UInt32, _ queue: UInt64,
  _ fn: swiftgrpc_host_fn?, _ tag: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    try startCall(channel, method, kind, md, mdCount, message, messageLen, deadline, flags, queue,
                  fn, tag, nil, out)
  }
}

@_cdecl("swiftgrpc_client_call_start_v2")
public func swiftgrpc_client_call_start_v2(
  _ channel: UInt64, _ args: UnsafePointer<swiftgrpc_call_args>?,
  _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let args else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "args is NULL") }
    let a = args.pointee
    guard Int(a.struct_size) >= MemoryLayout<swiftgrpc_call_args>.size else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT,
                     "args->struct_size \(a.struct_size) is smaller than sizeof(swiftgrpc_call_args)")
    }
    let credentials = a.credentials == 0 ? nil : try lookupCallCredentials(a.credentials)
    try startCall(channel, a.method, a.kind, a.metadata, a.metadata_count, a.message, a.message_len,
                  a.deadline_ns, a.flags, a.queue, a.fn, a.tag, credentials, out)
  }
}

private func startCall(
  _ channel: UInt64, _ method: UnsafePointer<CChar>?, _ kind: Int32,
  _ md: UnsafePointer<swiftgrpc_metadata>?, _ mdCount: Int, _ message: UnsafeRawPointer?,
  _ messageLen: Int, _ deadline: Int64, _ flags: UInt32, _ queue: UInt64,
  _ fn: swiftgrpc_host_fn?, _ tag: UnsafeMutableRawPointer?, _ credentials: CallCredentials?,
  _ out: UnsafeMutablePointer<UInt64>?
) throws(ABIError) {
  guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
  let c = try lookupChannel(channel)
  let path = try cString(method, "method")
  if let why = MethodPath.callError(path) { throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, why) }
  guard let k = MethodKind(rawValue: kind) else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "kind \(kind) is not SWIFTGRPC_KIND_*")
  }
  let compressFlags = SWIFTGRPC_CALL_COMPRESS_NONE | SWIFTGRPC_CALL_COMPRESS_DEFLATE | SWIFTGRPC_CALL_COMPRESS_GZIP
  guard flags & ~(SWIFTGRPC_CALL_WAIT_FOR_READY | compressFlags) == 0 else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "unknown call flags 0x\(String(flags, radix: 16))")
  }
  let compression: MessageEncoding?
  switch flags & compressFlags {
  case 0: compression = nil
  case SWIFTGRPC_CALL_COMPRESS_NONE: compression = .identity
  case SWIFTGRPC_CALL_COMPRESS_DEFLATE: compression = .deflate
  case SWIFTGRPC_CALL_COMPRESS_GZIP: compression = .gzip
  default:
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "call flags 0x\(String(flags, radix: 16)) name more than one compression")
  }
  let metadata = try metadata(md, mdCount)
  var request: [UInt8]? = nil
  if k.clientStreams {
    guard message == nil && messageLen == 0 else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "a \(k) call takes no message at start: use swiftgrpc_client_send_message")
    }
  } else {
    request = try bytes(message, messageLen, "message")
  }
  let sink: EventSink
  if queue != 0 {
    guard fn == nil else { throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "give a queue or a fn, not both") }
    let q = try lookupQueue(queue)
    guard q.runtime == c.runtime else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "queue \(queue) belongs to another runtime")
    }
    sink = QueueSink(queue: q.queue, channel: channel)
  } else {
    guard let fn else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "fn is NULL and queue is 0") }
    sink = FunctionSink(fn: fn, userData: nil, channel: channel)
  }
  var start = CallStart(
    method: path, kind: k, metadata: metadata, message: request,
    deadline: deadline == SWIFTGRPC_DEADLINE_DEFAULT ? nil : deadline,
    waitForReady: flags & SWIFTGRPC_CALL_WAIT_FOR_READY != 0, sink: sink,
    tag: UInt(bitPattern: tag), credentials: credentials)
  start.compression = compression
  do throws(Channel.ChannelError) {
    out.pointee = try c.channel.startCall(start)
  } catch {
    if case .tooLarge(let m) = error { throw ABIError(SWIFTGRPC_E_TOO_LARGE, m) }
    if case .invalidArgument(let m) = error { throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, m) }
    throw ABIError(SWIFTGRPC_E_WRONG_STATE, "cannot start a call: \(error)")
  }
}

private func submit(_ channel: UInt64, _ call: UInt64, _ op: CallOp) throws(ABIError) {
  let c = try lookupChannel(channel).channel
  guard let error = c.submit(call: call, op) else { return }
  switch error {
  case .unknown:
    throw ABIError(SWIFTGRPC_E_BAD_HANDLE, "call \(call) was never issued by channel \(channel)")
  case .ended, .alreadyCompleted:
    throw ABIError(SWIFTGRPC_E_TOKEN_CLOSED, "call \(call) has ended (its status was delivered)")
  case .wrongState(let m):
    throw ABIError(SWIFTGRPC_E_WRONG_STATE, "call \(call): \(m)")
  case .tooLarge(let m):
    throw ABIError(SWIFTGRPC_E_TOO_LARGE, m)
  }
}

@_cdecl("swiftgrpc_client_send_message")
public func swiftgrpc_client_send_message(
  _ channel: UInt64, _ call: UInt64, _ data: UnsafeRawPointer?, _ len: Int
) -> Int32 {
  guarded { () throws(ABIError) in
    try submit(channel, call, .send(try bytes(data, len, "message")))
  }
}

@_cdecl("swiftgrpc_client_send_message_v2")
public func swiftgrpc_client_send_message_v2(
  _ channel: UInt64, _ call: UInt64, _ data: UnsafeRawPointer?, _ len: Int, _ flags: UInt32
) -> Int32 {
  guarded { () throws(ABIError) in
    let compress = try compresses(writeFlags: flags)
    try submit(channel, call, .send(try bytes(data, len, "message"), compress: compress))
  }
}

@_cdecl("swiftgrpc_client_half_close")
public func swiftgrpc_client_half_close(_ channel: UInt64, _ call: UInt64) -> Int32 {
  guarded { () throws(ABIError) in try submit(channel, call, .halfClose) }
}

@_cdecl("swiftgrpc_client_read")
public func swiftgrpc_client_read(_ channel: UInt64, _ call: UInt64) -> Int32 {
  guarded { () throws(ABIError) in try submit(channel, call, .read) }
}

@_cdecl("swiftgrpc_client_cancel")
public func swiftgrpc_client_cancel(_ channel: UInt64, _ call: UInt64) -> Int32 {
  guarded { () throws(ABIError) in try submit(channel, call, .cancel) }
}
