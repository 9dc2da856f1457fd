import CLinux
import COpenSSL
import Glibc

/// Why TLS could not be set up or a handshake failed: OpenSSL's reasons, in words.
public struct TLSError: Error, Equatable, Sendable, CustomStringConvertible {
  public let description: String
  init(_ what: String) {
    description = what + TLSError.drainErrors()
  }

  /// OpenSSL's queued errors as "; reason: ..." (and clears the queue).
  static func drainErrors() -> String {
    var out = ""
    while true {
      let code = ERR_get_error()
      if code == 0 { break }
      var buf = [CChar](repeating: 0, count: 256)
      ERR_error_string_n(code, &buf, buf.count)
      out += "; " + String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    return out
  }
}

/// A certificate chain (leaf first) and its private key, PEM.
public struct TLSIdentity: Sendable, Equatable {
  public var certificateChain: [UInt8]
  public var privateKey: [UInt8]

  public init(certificateChain: [UInt8], privateKey: [UInt8]) {
    self.certificateChain = certificateChain
    self.privateKey = privateKey
  }
}

/// How a TLS server treats client certificates.
public enum ClientAuth: Int32, Sendable {
  /// None asked for.
  case none = 0
  /// Asked for; one that is sent must verify against the client roots.
  case request = 1
  /// Required, and verified against the client roots.
  case require = 2
}

/// One OpenSSL context (SSL_CTX): the settings every connection made from it shares. TLS 1.2
/// and 1.3 only, no renegotiation, no compression, ALPN "h2".
final class TLSContext: @unchecked Sendable {
  // @unchecked: the SSL_CTX is configured in init and only read afterwards (OpenSSL makes
  // SSL_new on a shared context thread-safe).
  let ctx: OpaquePointer
  /// Server: the other identities' contexts, chosen by SNI.
  fileprivate var alternates: [(context: TLSContext, leaf: OpaquePointer)] = []
  fileprivate var leaf: OpaquePointer?

  private init(ctx: OpaquePointer) { self.ctx = ctx }

  deinit {
    if let leaf { X509_free(leaf) }
    SSL_CTX_free(ctx)
  }

  private static func base(server: Bool) throws(TLSError) -> TLSContext {
    guard let ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
      throw TLSError("SSL_CTX_new failed")
    }
    let context = TLSContext(ctx: ctx)
    guard swiftgrpc_ssl_ctx_set_min_proto_version(ctx, swiftgrpc_tls1_2_version()) == 1 else {
      throw TLSError("cannot require TLS 1.2")
    }
    SSL_CTX_set_options(
      ctx, swiftgrpc_ssl_op_no_renegotiation() | swiftgrpc_ssl_op_no_compression()
        | swiftgrpc_ssl_op_ignore_unexpected_eof())
    _ = swiftgrpc_ssl_ctx_set_mode(ctx, swiftgrpc_ssl_mode_partial_write() | swiftgrpc_ssl_mode_no_auto_chain())
    return context
  }

  /// A server context: `identities` (the first one by default, another when the client's SNI
  /// names a host its certificate covers), client certificates per `clientAuth`.
  static func server(identities: [TLSIdentity], clientRoots: [UInt8]?, clientAuth: ClientAuth)
    throws(TLSError) -> TLSContext
  {
    guard let first = identities.first else { throw TLSError("a TLS server needs a certificate and key") }
    let main = try serverContext(first, clientRoots: clientRoots, clientAuth: clientAuth)
    for identity in identities.dropFirst() {
      let alt = try serverContext(identity, clientRoots: clientRoots, clientAuth: clientAuth)
      main.alternates.append((alt, alt.leaf!))
    }
    if !main.alternates.isEmpty {
      _ = swiftgrpc_ssl_ctx_set_servername_callback(main.ctx, serverNameCallback)
      _ = swiftgrpc_ssl_ctx_set_servername_arg(main.ctx, Unmanaged.passUnretained(main).toOpaque())
    }
    return main
  }

  private static func serverContext(_ identity: TLSIdentity, clientRoots: [UInt8]?,
                                    clientAuth: ClientAuth) throws(TLSError) -> TLSContext {
    let c = try base(server: true)
    c.leaf = try c.use(identity)
    SSL_CTX_set_alpn_select_cb(c.ctx, alpnSelect, nil)
    switch clientAuth {
    case .none:
      SSL_CTX_set_verify(c.ctx, SSL_VERIFY_NONE, nil)
    case .request, .require:
      guard let clientRoots else { throw TLSError("client authentication needs the client roots") }
      try c.trust(clientRoots)
      SSL_CTX_set_verify(
        c.ctx, SSL_VERIFY_PEER | (clientAuth == .require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nil)
    }
    return c
  }

  /// A client context: `roots` (PEM) or the system's trust store, and a client identity.
  static func client(roots: [UInt8]?, identity: TLSIdentity?) throws(TLSError) -> TLSContext {
    let c = try base(server: false)
    if let roots {
      try c.trust(roots)
    } else if SSL_CTX_set_default_verify_paths(c.ctx) != 1 {
      throw TLSError("cannot load the system's trusted certificates")
    }
    if let identity { c.leaf = try c.use(identity) }
    SSL_CTX_set_verify(c.ctx, SSL_VERIFY_PEER, nil)
    return c
  }

  /// Installs a certificate chain and key; returns a reference to the leaf.
  private func use(_ identity: TLSIdentity) throws(TLSError) -> OpaquePointer {
    let certs = try TLSContext.certificates(identity.certificateChain, "certificate chain")
    defer { certs.forEach { X509_free($0) } }
    guard SSL_CTX_use_certificate(ctx, certs[0]) == 1 else { throw TLSError("the certificate is not usable") }
    for extra in certs.dropFirst() {
      guard swiftgrpc_ssl_ctx_add1_chain_cert(ctx, extra) == 1 else { throw TLSError("a chain certificate is not usable") }
    }
    let key: OpaquePointer? = identity.privateKey.withUnsafeBytes { raw in
      guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
      defer { BIO_free(bio) }
      return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
    }
    guard let key else { throw TLSError("the private key is not a PEM private key") }
    defer { EVP_PKEY_free(key) }
    guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
      throw TLSError("the private key does not match the certificate")
    }
    X509_up_ref(certs[0])
    return certs[0]
  }

  /// Adds PEM certificates to the context's trust store.
  private func trust(_ pem: [UInt8]) throws(TLSError) {
    let certs = try TLSContext.certificates(pem, "root certificates")
    defer { certs.forEach { X509_free($0) } }
    let store = SSL_CTX_get_cert_store(ctx)
    for cert in certs where X509_STORE_add_cert(store, cert) != 1 {
      _ = TLSError.drainErrors()  // a duplicate root is not an error
    }
  }

  /// Every certificate in a PEM text (at least one).
  static func certificates(_ pem: [UInt8], _ what: String) throws(TLSError) -> [OpaquePointer] {
    var out = [OpaquePointer]()
    pem.withUnsafeBytes { raw in
      guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return }
      defer { BIO_free(bio) }
      while let cert = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(cert) }
    }
    _ = TLSError.drainErrors()  // the end of the text reads as an error
    if out.isEmpty { throw TLSError("the \(what) hold no PEM certificate") }
    return out
  }

  /// The context whose certificate covers `name` (SNI), if not this one.
  fileprivate func alternate(for name: String) -> TLSContext? {
    if let leaf, X509_check_host(leaf, name, name.utf8.count, 0, nil) == 1 { return nil }
    return alternates.first { X509_check_host($0.leaf, name, name.utf8.count, 0, nil) == 1 }?.context
  }
}

/// ALPN on the server: "h2" or nothing (the handshake then fails: no application protocol).
private let alpnSelect: @convention(c) (
  OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
  UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
) -> Int32 = { _, out, outlen, input, inlen, _ in
  guard let out, let outlen, let input else { return SSL_TLSEXT_ERR_ALERT_FATAL }
  var i = 0
  while i < Int(inlen) {
    let n = Int(input[i])
    if n == 2 && i + 2 < Int(inlen) && input[i + 1] == UInt8(ascii: "h") && input[i + 2] == UInt8(ascii: "2") {
      out.pointee = input + i + 1
      outlen.pointee = 2
      return SSL_TLSEXT_ERR_OK
    }
    i += 1 + n
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL
}

/// SNI on the server: switch to the identity whose certificate covers the requested name.
private let serverNameCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?,
                                                UnsafeMutableRawPointer?) -> Int32 = { ssl, _, arg in
  guard let ssl, let arg, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else {
    return SSL_TLSEXT_ERR_OK
  }
  let main = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
  if let alt = main.alternate(for: String(cString: name)) { SSL_set_SSL_CTX(ssl, alt.ctx) }
  return SSL_TLSEXT_ERR_OK
}

/// A server's TLS settings. Replacing them (`update`) applies to connections accepted from then
/// on; connections already open keep theirs (certificate rotation without a restart).
public final class ServerCredentials: Sendable {
  private let current: Locked<TLSContext>
  /// Asked before each new connection's handshake; it may `update` the credentials then (the
  /// connection gets the new ones). gRPC's certificate configuration fetcher.
  private let fetcher = Locked<(@Sendable () -> Void)?>(nil)

  /// Sets the fetcher (nil: none). It runs on a loop thread and must return promptly.
  public func setFetcher(_ fetch: (@Sendable () -> Void)?) {
    fetcher.withLock { $0 = fetch }
  }

  /// The context for a connection being accepted now: the fetcher is asked first.
  func contextForNewConnection() -> TLSContext {
    if let fetch = fetcher.withLock({ $0 }) { fetch() }
    return context
  }

  public init(identities: [TLSIdentity], clientRoots: [UInt8]?, clientAuth: ClientAuth) throws(TLSError) {
    current = Locked(try TLSContext.server(identities: identities, clientRoots: clientRoots, clientAuth: clientAuth))
  }

  /// New certificates (and client settings) for new connections.
  public func update(identities: [TLSIdentity], clientRoots: [UInt8]?, clientAuth: ClientAuth) throws(TLSError) {
    let next = try TLSContext.server(identities: identities, clientRoots: clientRoots, clientAuth: clientAuth)
    current.withLock { $0 = next }
  }

  var context: TLSContext { current.withLock { $0 } }
}

/// A channel's TLS settings: the roots it trusts (nil: the system's), a client certificate, and
/// the name to verify the server's certificate against (nil: the target's host).
public final class ChannelCredentials: Sendable {
  let context: TLSContext
  public let serverNameOverride: String?
  /// Call credentials every call of the channel carries (gRPC's composite channel credentials).
  public let callCredentials: CallCredentials?

  public init(roots: [UInt8]?, identity: TLSIdentity?, serverNameOverride: String?) throws(TLSError) {
    context = try TLSContext.client(roots: roots, identity: identity)
    self.serverNameOverride = serverNameOverride
    callCredentials = nil
  }

  private init(_ base: ChannelCredentials, _ call: CallCredentials) {
    context = base.context
    serverNameOverride = base.serverNameOverride
    callCredentials = base.callCredentials.map { .compose([$0, call]) } ?? call
  }

  /// These credentials, with `call` added to every call.
  public func composed(with call: CallCredentials) -> ChannelCredentials {
    ChannelCredentials(self, call)
  }
}

/// What a TLS handshake step gives.
enum HandshakeStep {
  case done
  case wantRead
  case wantWrite
  case failed(String)
}

/// The byte transport of a TLS connection on a non-blocking socket: handshake, then
/// SSL_read/SSL_write. Loop-bound.
final class TLSTransport: ByteTransport {
  private(set) var fd: Int32
  private var ssl: OpaquePointer?
  private let isServer: Bool
  /// Whether the handshake is still to do.
  private(set) var needsHandshake = true

  /// A server-side connection on `fd`.
  init?(server fd: Int32, context: TLSContext) {
    self.fd = fd
    isServer = true
    guard let ssl = SSL_new(context.ctx) else { return nil }
    self.ssl = ssl
    SSL_set_fd(ssl, fd)
    SSL_set_accept_state(ssl)
  }

  /// A client-side connection on `fd` to `serverName` (SNI unless it is an IP address, and the
  /// name the certificate must cover).
  init?(client fd: Int32, context: TLSContext, serverName: String) {
    self.fd = fd
    isServer = false
    guard let ssl = SSL_new(context.ctx) else { return nil }
    self.ssl = ssl
    SSL_set_fd(ssl, fd)
    SSL_set_connect_state(ssl)
    let protos: [UInt8] = [2, UInt8(ascii: "h"), UInt8(ascii: "2")]
    _ = SSL_set_alpn_protos(ssl, protos, UInt32(protos.count))
    let param = SSL_get0_param(ssl)
    if TLSTransport.isIPAddress(serverName) {
      X509_VERIFY_PARAM_set1_ip_asc(param, serverName)
    } else {
      _ = swiftgrpc_ssl_set_tlsext_host_name(ssl, serverName)
      X509_VERIFY_PARAM_set1_host(param, serverName, serverName.utf8.count)
    }
  }

  deinit { close() }

  static func isIPAddress(_ s: String) -> Bool {
    var buf = in6_addr()
    return inet_pton(AF_INET, s, &buf) == 1 || inet_pton(AF_INET6, s, &buf) == 1
  }

  func handshakeStep() -> HandshakeStep {
    guard let ssl else { return .failed("the connection is closed") }
    let rc = SSL_do_handshake(ssl)
    if rc == 1 {
      needsHandshake = false
      var proto: UnsafePointer<UInt8>?
      var len: UInt32 = 0
      SSL_get0_alpn_selected(ssl, &proto, &len)
      guard len == 2, let proto, proto[0] == UInt8(ascii: "h"), proto[1] == UInt8(ascii: "2") else {
        return .failed("the peer did not negotiate HTTP/2 (ALPN h2)")
      }
      return .done
    }
    switch SSL_get_error(ssl, rc) {
    case SSL_ERROR_WANT_READ: return .wantRead
    case SSL_ERROR_WANT_WRITE: return .wantWrite
    case SSL_ERROR_SYSCALL, SSL_ERROR_ZERO_RETURN:
      let e = swiftgrpc_errno()
      _ = TLSError.drainErrors()
      return .failed(e == 0 ? "the peer closed the connection during the TLS handshake"
                            : SystemError("TLS handshake", errno: e).description)
    default:
      return .failed(failure())
    }
  }

  /// Why the handshake failed: the certificate verification result if that was it, else
  /// OpenSSL's errors.
  private func failure() -> String {
    let queued = TLSError.drainErrors()
    if let ssl {
      let verify = SSL_get_verify_result(ssl)
      if verify != X509_V_OK {
        return "TLS handshake failed: certificate verify failed: "
          + String(cString: X509_verify_cert_error_string(verify))
      }
    }
    return "TLS handshake failed" + queued
  }

  func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
    guard let ssl else { return .failed(EBADF) }
    var total = 0
    while total < buffer.count {
      var n = 0
      if SSL_read_ex(ssl, buffer.baseAddress! + total, buffer.count - total, &n) == 1 {
        total += n
        continue
      }
      if total > 0 { _ = TLSError.drainErrors(); return .bytes(total) }
      switch SSL_get_error(ssl, 0) {
      case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
      case SSL_ERROR_ZERO_RETURN: return .eof
      case SSL_ERROR_SYSCALL:
        let e = swiftgrpc_errno()
        _ = TLSError.drainErrors()
        return e == 0 ? .eof : .failed(e)
      default:
        _ = TLSError.drainErrors()
        return .failed(EPROTO)
      }
    }
    return .bytes(total)
  }

  func write(_ buffer: UnsafeRawBufferPointer) -> IOResult {
    guard let ssl else { return .failed(EBADF) }
    if buffer.isEmpty { return .bytes(0) }
    var n = 0
    if SSL_write_ex(ssl, buffer.baseAddress, buffer.count, &n) == 1 { return .bytes(n) }
    switch SSL_get_error(ssl, 0) {
    case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wouldBlock
    case SSL_ERROR_ZERO_RETURN: return .eof
    default:
      let e = swiftgrpc_errno()
      _ = TLSError.drainErrors()
      return .failed(e == 0 ? EPROTO : e)
    }
  }

  func shutdownWrite() {
    guard let ssl, fd >= 0 else { return }
    if !needsHandshake { _ = SSL_shutdown(ssl) }  // close_notify, best effort
    _ = TLSError.drainErrors()
    _ = shutdown(fd, Int32(SHUT_WR))
  }

  func close() {
    if let ssl {
      SSL_free(ssl)
      self.ssl = nil
      _ = TLSError.drainErrors()
    }
    if fd >= 0 {
      FileDescriptors.close(fd)
      fd = -1
    }
  }

  // MARK: - The peer's identity

  /// The auth properties of the connection, as gRPC C-core names them: transport security,
  /// and (when the peer sent a verified certificate) its subject, common name, alternative
  /// names and PEM.
  func authProperties() -> [MetadataEntry] {
    var out = [MetadataEntry("transport_security_type", "ssl"),
               MetadataEntry("security_level", "TSI_PRIVACY_AND_INTEGRITY")]
    guard let ssl else { return out }
    if let version = SSL_get_version(ssl) { out.append(MetadataEntry("ssl_tls_version", String(cString: version))) }
    out.append(MetadataEntry("ssl_session_reused", SSL_session_reused(ssl) == 1 ? "true" : "false"))
    if isServer, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) {
      out.append(MetadataEntry("ssl_requested_server_name", String(cString: name)))
    }
    guard let cert = SSL_get1_peer_certificate(ssl) else { return out }
    defer { X509_free(cert) }
    if let subject = X509_get_subject_name(cert) {
      if let text = TLSTransport.print(subject) { out.append(MetadataEntry(key: "x509_subject", value: text)) }
      var cn = [CChar](repeating: 0, count: 256)
      let n = X509_NAME_get_text_by_NID(subject, NID_commonName, &cn, Int32(cn.count))
      if n > 0 { out.append(MetadataEntry(key: "x509_common_name", value: cn[..<Int(n)].map { UInt8(bitPattern: $0) })) }
    }
    var uris = [[UInt8]]()
    if let names = swiftgrpc_x509_alt_names(cert) {
      defer { swiftgrpc_general_names_free(names) }
      for i in 0..<swiftgrpc_general_names_count(names) {
        guard let name = swiftgrpc_general_names_at(names, i),
          let text = TLSTransport.text(of: name)
        else { continue }
        out.append(MetadataEntry(key: "x509_subject_alternative_name", value: text))
        switch swiftgrpc_general_name_type(name) {
        case swiftgrpc_gen_dns(): out.append(MetadataEntry(key: "peer_dns", value: text))
        case swiftgrpc_gen_uri(): uris.append(text)
        case swiftgrpc_gen_email(): out.append(MetadataEntry(key: "peer_email", value: text))
        case swiftgrpc_gen_ipadd(): out.append(MetadataEntry(key: "peer_ip", value: text))
        default: break
        }
      }
    }
    for uri in uris { out.append(MetadataEntry(key: "peer_uri", value: uri)) }
    // C-core's rule: a SPIFFE ID only when it is the certificate's one URI name.
    if uris.count == 1, uris[0].starts(with: Array("spiffe://".utf8)) {
      out.append(MetadataEntry(key: "peer_spiffe_id", value: uris[0]))
    }
    if let pem = TLSTransport.pem([cert]) { out.append(MetadataEntry(key: "x509_pem_cert", value: pem)) }
    // The rest of the chain the peer sent (OpenSSL leaves the leaf out on a server).
    let chain = SSL_get_peer_cert_chain(ssl)
    let sent = (0..<swiftgrpc_x509_stack_count(chain)).compactMap { swiftgrpc_x509_stack_at(chain, $0) }
    if !sent.isEmpty, let pem = TLSTransport.pem(sent) {
      out.append(MetadataEntry(key: "x509_pem_cert_chain", value: pem))
    }
    return out
  }

  /// Certificates as concatenated PEM.
  private static func pem(_ certs: [OpaquePointer]) -> [UInt8]? {
    guard let bio = BIO_new(BIO_s_mem()) else { return nil }
    defer { BIO_free(bio) }
    for cert in certs where PEM_write_bio_X509(bio, cert) != 1 { return nil }
    return contents(bio)
  }

  private static func print(_ name: OpaquePointer) -> [UInt8]? {
    guard let bio = BIO_new(BIO_s_mem()) else { return nil }
    defer { BIO_free(bio) }
    guard X509_NAME_print_ex(bio, name, 0, swiftgrpc_xn_flag_rfc2253()) >= 0 else { return nil }
    return contents(bio)
  }

  private static func contents(_ bio: OpaquePointer) -> [UInt8]? {
    var p: UnsafeMutablePointer<CChar>?
    let n = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &p)
    guard n > 0, let p else { return nil }
    return Array(UnsafeRawBufferPointer(start: p, count: n))
  }

  private static func text(of name: UnsafePointer<GENERAL_NAME>) -> [UInt8]? {
    guard let s = swiftgrpc_general_name_string(name) else { return nil }
    let bytes = Array(UnsafeRawBufferPointer(start: ASN1_STRING_get0_data(s), count: Int(ASN1_STRING_length(s))))
    guard swiftgrpc_general_name_type(name) == swiftgrpc_gen_ipadd() else { return bytes }
    var buf = [CChar](repeating: 0, count: 64)
    let family = bytes.count == 4 ? AF_INET : AF_INET6
    guard bytes.count == 4 || bytes.count == 16,
      bytes.withUnsafeBytes({ inet_ntop(family, $0.baseAddress, &buf, 64) }) != nil
    else { return nil }
    return buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
  }
}
