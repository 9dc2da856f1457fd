import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

/// Copies a PEM byte string (NULL with 0 allowed when `optional`).
private func pem(_ p: UnsafePointer<CChar>?, _ len: Int, _ what: String, optional: Bool = false)
  throws(ABIError) -> [UInt8]?
{
  if p == nil && len == 0 {
    if optional { return nil }
    throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "\(what) is NULL")
  }
  let b = try bytes(UnsafeRawPointer(p), len, what)
  guard !b.isEmpty else { throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "\(what) is empty") }
  return b
}

private func identities(_ p: UnsafePointer<swiftgrpc_tls_identity>?, _ count: Int)
  throws(ABIError) -> [TLSIdentity]
{
  guard count > 0, count <= 64 else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "identity count \(count) is outside 1-64")
  }
  guard let p else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "identities is NULL") }
  var out = [TLSIdentity]()
  for i in 0..<count {
    out.append(try identity(p[i], "identities[\(i)]"))
  }
  return out
}

private func identity(_ i: swiftgrpc_tls_identity, _ what: String) throws(ABIError) -> TLSIdentity {
  TLSIdentity(
    certificateChain: try pem(i.certificate_chain, i.certificate_chain_len, "\(what).certificate_chain")!,
    privateKey: try pem(i.private_key, i.private_key_len, "\(what).private_key")!)
}

private func clientAuth(_ v: Int32) throws(ABIError) -> ClientAuth {
  guard let a = ClientAuth(rawValue: v) else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "client_auth \(v) is not SWIFTGRPC_CLIENT_AUTH_*")
  }
  return a
}

@_cdecl("swiftgrpc_server_credentials_create")
public func swiftgrpc_server_credentials_create(
  _ ids: UnsafePointer<swiftgrpc_tls_identity>?, _ count: Int, _ roots: UnsafePointer<CChar>?,
  _ rootsLen: Int, _ auth: Int32, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let list = try identities(ids, count)
    let clientRoots = try pem(roots, rootsLen, "client_roots", optional: true)
    let mode = try clientAuth(auth)
    do throws(TLSError) {
      let creds = try ServerCredentials(identities: list, clientRoots: clientRoots, clientAuth: mode)
      out.pointee = register(.serverCredentials(creds))
    } catch {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, error.description)
    }
  }
}

@_cdecl("swiftgrpc_server_credentials_update")
public func swiftgrpc_server_credentials_update(
  _ creds: UInt64, _ ids: UnsafePointer<swiftgrpc_tls_identity>?, _ count: Int,
  _ roots: UnsafePointer<CChar>?, _ rootsLen: Int, _ auth: Int32
) -> Int32 {
  guarded { () throws(ABIError) in
    let c = try lookupServerCredentials(creds)
    let list = try identities(ids, count)
    let clientRoots = try pem(roots, rootsLen, "client_roots", optional: true)
    let mode = try clientAuth(auth)
    do throws(TLSError) {
      try c.update(identities: list, clientRoots: clientRoots, clientAuth: mode)
    } catch {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, error.description)
    }
  }
}

@_cdecl("swiftgrpc_server_credentials_set_fetcher")
public func swiftgrpc_server_credentials_set_fetcher(
  _ creds: UInt64, _ fn: swiftgrpc_host_fn?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  guarded { () throws(ABIError) in
    let c = try lookupServerCredentials(creds)
    guard let fn else {
      c.setFetcher(nil)
      return
    }
    let sink = FunctionSink(fn: fn, userData: userData)
    c.setFetcher { _ = sink.deliver(CallEvent(type: .credentialsFetch, token: creds, kind: .unary, method: "")) }
  }
}

@_cdecl("swiftgrpc_server_credentials_destroy")
public func swiftgrpc_server_credentials_destroy(_ creds: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    guard try wasIssued(creds, "server credentials") else { return }
    _ = try lookupServerCredentials(creds)
    _ = handles.withLock { $0.objects.removeValue(forKey: creds) }
  }
}

@_cdecl("swiftgrpc_channel_credentials_create")
public func swiftgrpc_channel_credentials_create(
  _ roots: UnsafePointer<CChar>?, _ rootsLen: Int, _ id: UnsafePointer<swiftgrpc_tls_identity>?,
  _ override: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let trusted = try pem(roots, rootsLen, "roots", optional: true)
    let mine = try id.map { i throws(ABIError) in try identity(i.pointee, "identity") }
    let name = override == nil ? nil : try cString(override, "server_name_override")
    if let name, name.isEmpty || MetadataValidation.validate(value: Array(name.utf8), key: "name") != nil
      || name.contains(" ")
    {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "server_name_override '\(name)' is not a host name")
    }
    do throws(TLSError) {
      let creds = try ChannelCredentials(roots: trusted, identity: mine, serverNameOverride: name)
      out.pointee = register(.channelCredentials(creds))
    } catch {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, error.description)
    }
  }
}

@_cdecl("swiftgrpc_channel_credentials_destroy")
public func swiftgrpc_channel_credentials_destroy(_ creds: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    guard try wasIssued(creds, "channel credentials") else { return }
    _ = try lookupChannelCredentials(creds)
    _ = handles.withLock { $0.objects.removeValue(forKey: creds) }
  }
}

// MARK: - Call credentials

@_cdecl("swiftgrpc_call_credentials_create_access_token")
public func swiftgrpc_call_credentials_create_access_token(
  _ token: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let t = try cString(token, "token")
    if t.isEmpty || MetadataValidation.validate(value: Array(("Bearer " + t).utf8), key: "authorization") != nil {
      throw ABIError(SWIFTGRPC_E_INVALID_METADATA, "the access token must be printable ASCII and not empty")
    }
    out.pointee = register(.callCredentials(CallCredentials(accessToken: t)))
  }
}

@_cdecl("swiftgrpc_call_credentials_create_plugin")
public func swiftgrpc_call_credentials_create_plugin(
  _ queue: UInt64, _ fn: swiftgrpc_host_fn?, _ userData: UnsafeMutableRawPointer?,
  _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let sink: EventSink
    if queue != 0 {
      guard fn == nil else { throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "give a queue or a fn, not both") }
      sink = QueueSink(queue: try lookupQueue(queue).queue)
    } else {
      guard let fn else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "fn is NULL and queue is 0") }
      sink = FunctionSink(fn: fn, userData: userData)
    }
    let creds = CallCredentials(plugin: sink, tag: UInt(bitPattern: userData))
    out.pointee = register(.callCredentials(creds))
  }
}

@_cdecl("swiftgrpc_call_credentials_answer")
public func swiftgrpc_call_credentials_answer(
  _ request: UInt64, _ md: UnsafePointer<swiftgrpc_metadata>?, _ count: Int, _ code: Int32,
  _ statusMessage: UnsafePointer<CChar>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard StatusCode(rawValue: code) != nil else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "status code \(code) is outside 0-16")
    }
    let entries = try metadata(md, count)
    let failure: String? =
      code == 0 ? nil : (statusMessage == nil ? "status \(code)" : try cString(statusMessage, "status_message"))
    switch CredentialRequests.answer(request, metadata: entries, failure: failure) {
    case nil: return
    case .unknown?:
      throw ABIError(SWIFTGRPC_E_UNKNOWN_TOKEN, "credentials request \(request) was never issued")
    case .ended?:
      throw ABIError(SWIFTGRPC_E_TOKEN_CLOSED, "credentials request \(request) was answered already or its call ended")
    }
  }
}

@_cdecl("swiftgrpc_call_credentials_compose")
public func swiftgrpc_call_credentials_compose(
  _ a: UInt64, _ b: UInt64, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let first = try lookupCallCredentials(a)
    let second = try lookupCallCredentials(b)
    out.pointee = register(.callCredentials(.compose([first, second])))
  }
}

@_cdecl("swiftgrpc_call_credentials_destroy")
public func swiftgrpc_call_credentials_destroy(_ creds: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    guard try wasIssued(creds, "call credentials") else { return }
    _ = try lookupCallCredentials(creds)
    _ = handles.withLock { $0.objects.removeValue(forKey: creds) }
  }
}

@_cdecl("swiftgrpc_channel_credentials_compose")
public func swiftgrpc_channel_credentials_compose(
  _ channel: UInt64, _ call: UInt64, _ out: UnsafeMutablePointer<UInt64>?
) -> Int32 {
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    let c = try lookupChannelCredentials(channel)
    let k = try lookupCallCredentials(call)
    out.pointee = register(.channelCredentials(c.composed(with: k)))
  }
}
