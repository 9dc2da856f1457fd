import CSwiftGRPCABI
import SwiftGRPCCore

private func submit(_ server: UInt64, _ token: UInt64, _ op: CallOp) throws(ABIError) {
  let s = try lookupServer(server).server
  if let error = s.answer(token: token, op) { throw abiError(error, server, token) }
}

private func abiError(_ error: CallError, _ server: UInt64, _ token: UInt64) -> ABIError {
  switch error {
  case .unknown:
    return ABIError(SWIFTGRPC_E_UNKNOWN_TOKEN, "token \(token) was never issued by server \(server)")
  case .ended:
    return ABIError(SWIFTGRPC_E_TOKEN_CLOSED, "token \(token): the call has ended (finished or cancelled)")
  case .alreadyCompleted:
    return ABIError(SWIFTGRPC_E_ALREADY_COMPLETED, "token \(token) was already completed")
  case .wrongState(let m):
    return ABIError(SWIFTGRPC_E_WRONG_STATE, "token \(token): \(m)")
  case .tooLarge(let m):
    return ABIError(SWIFTGRPC_E_TOO_LARGE, m)
  }
}

@_cdecl("swiftgrpc_call_set_tag")
public func swiftgrpc_call_set_tag(_ server: UInt64, _ token: UInt64, _ tag: UnsafeMutableRawPointer?)
  -> Int32
{
  guarded { () throws(ABIError) in
    let s = try lookupServer(server).server
    if let error = s.setTag(token: token, UInt(bitPattern: tag)) { throw abiError(error, server, token) }
  }
}

private func message(_ data: UnsafeRawPointer?, _ len: Int) throws(ABIError) -> [UInt8] {
  try bytes(data, len, "message")
}

@_cdecl("swiftgrpc_call_send_initial_metadata")
public func swiftgrpc_call_send_initial_metadata(
  _ server: UInt64, _ token: UInt64, _ md: UnsafePointer<swiftgrpc_metadata>?, _ count: Int
) -> Int32 {
  guarded { () throws(ABIError) in
    try submit(server, token, .initialMetadata(try metadata(md, count)))
  }
}

@_cdecl("swiftgrpc_call_send_message")
public func swiftgrpc_call_send_message(
  _ server: UInt64, _ token: UInt64, _ data: UnsafeRawPointer?, _ len: Int
) -> Int32 {
  guarded { () throws(ABIError) in
    try submit(server, token, .send(try message(data, len)))
  }
}

@_cdecl("swiftgrpc_call_send_message_v2")
public func swiftgrpc_call_send_message_v2(
  _ server: UInt64, _ token: UInt64, _ data: UnsafeRawPointer?, _ len: Int, _ flags: UInt32
) -> Int32 {
  guarded { () throws(ABIError) in
    let compress = try compresses(writeFlags: flags)
    try submit(server, token, .send(try message(data, len), compress: compress))
  }
}

@_cdecl("swiftgrpc_call_set_compression")
public func swiftgrpc_call_set_compression(_ server: UInt64, _ token: UInt64, _ algorithm: Int32)
  -> Int32
{
  guarded { () throws(ABIError) in
    try submit(server, token, .setCompression(try messageEncoding(Int64(algorithm), "algorithm")))
  }
}

@_cdecl("swiftgrpc_call_read")
public func swiftgrpc_call_read(_ server: UInt64, _ token: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    try submit(server, token, .read)
  }
}

@_cdecl("swiftgrpc_host_complete")
public func swiftgrpc_host_complete(
  _ server: UInt64, _ token: UInt64, _ data: UnsafeRawPointer?, _ len: Int, _ code: Int32,
  _ statusMessage: UnsafePointer<CChar>?, _ trailers: UnsafePointer<swiftgrpc_metadata>?,
  _ trailerCount: Int
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let statusCode = StatusCode(rawValue: code) else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "status code \(code) is outside 0-16")
    }
    let text = statusMessage == nil ? "" : try cString(statusMessage, "status_message")
    let msg: [UInt8]? = data == nil && len == 0 ? nil : try message(data, len)
    let md = try metadata(trailers, trailerCount)
    try submit(server, token, .complete(message: msg, status: Status(statusCode, text), trailers: md))
  }
}
