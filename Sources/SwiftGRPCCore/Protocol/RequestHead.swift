import Glibc

/// The head of a gRPC request as a server receives it, field by field, and the rules that make
/// it a gRPC call (the "gRPC over HTTP/2" spec): POST, `content-type: application/grpc[+…|;…]`,
/// `te: trailers`, a well-formed `grpc-timeout`, a known `grpc-encoding`, valid `-bin` base64.
/// Pure.
struct RequestHead {
  var path = ""
  var authority = ""
  private var httpMethod = ""  // kept only when it is not POST, for the error
  private var isPost = false
  /// Whether content-type was application/grpc (nil: absent).
  private var contentTypeOK: Bool?
  /// Whether te was `trailers` (nil: absent).
  private var teOK: Bool?
  private var timeout: [UInt8]?
  /// The request's message encoding (identity if no grpc-encoding came).
  private(set) var messageEncoding = MessageEncoding.identity
  /// A grpc-encoding we do not support, as received.
  private var unknownEncoding: String?
  /// The client's grpc-accept-encoding (identity only if it sent none, as gRPC C-core assumes).
  private(set) var acceptedEncodings = AcceptedEncodings.identityOnly
  private(set) var metadata: [MetadataEntry] = []
  private var error: String?

  /// One header field of the request head.
  mutating func add(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
    if name.first == UInt8(ascii: ":") {
      if name.equals(":path") {
        path = String(decoding: value, as: UTF8.self)
      } else if name.equals(":authority") {
        authority = String(decoding: value, as: UTF8.self)
      } else if name.equals(":method") {
        isPost = value.equals("POST")
        if !isPost { httpMethod = String(decoding: value, as: UTF8.self) }
      }
      return
    }
    if name.equals("content-type") {
      contentTypeOK = RequestHead.isGRPCContentType(value)
    } else if name.equals("te") {
      teOK = value.equals("trailers")
    } else if name.equals("grpc-timeout") {
      timeout = Array(value)
    } else if name.equals("grpc-encoding") {
      (messageEncoding, unknownEncoding) = MessageEncoding.parse(value)
    } else if name.equals("grpc-accept-encoding") {
      acceptedEncodings = AcceptedEncodings(header: value)
    } else {
      MetadataEntry.collect(name: name, value: value, into: &metadata, error: &error)
    }
  }

  /// Why the request is not a gRPC call the server can serve.
  enum Rejection: Error {
    /// Not gRPC at all: an HTTP status (415 for a wrong content-type).
    case http(status: StaticString, Status)
    /// A gRPC status, with reserved trailers (grpc-accept-encoding) to add.
    case grpc(Status, reservedTrailers: [MetadataEntry])
  }

  /// Checks the head. On success returns the request's timeout in nanoseconds (nil: none).
  func validate() -> Result<Int64?, Rejection> {
    guard contentTypeOK == true else {
      return .failure(.http(status: "415", Status(.internalError, "invalid gRPC content-type")))
    }
    guard isPost else {
      return .failure(.grpc(Status(.invalidArgument, ":method must be POST, got '\(httpMethod)'"), reservedTrailers: []))
    }
    if teOK == false {
      return .failure(.grpc(Status(.invalidArgument, "te must be 'trailers'"), reservedTrailers: []))
    }
    if let error {
      return .failure(.grpc(Status(.internalError, error), reservedTrailers: []))
    }
    if let unknownEncoding {
      return .failure(.grpc(
        Status(.unimplemented, "message encoding '\(unknownEncoding)' is not supported"),
        reservedTrailers: [MetadataEntry("grpc-accept-encoding", MessageEncoding.acceptHeader)]))
    }
    guard let timeout else { return .success(nil) }
    guard let nanos = GRPCTimeout.parse(timeout) else {
      return .failure(.grpc(
        Status(.internalError, "malformed grpc-timeout '\(String(decoding: timeout, as: UTF8.self))'"),
        reservedTrailers: []))
    }
    return .success(nanos)
  }

  /// `application/grpc`, alone or followed by `+…` or `;…`.
  static func isGRPCContentType(_ ct: UnsafeBufferPointer<UInt8>) -> Bool {
    let prefix: StaticString = "application/grpc"
    guard ct.hasPrefix(prefix) else { return false }
    let n = prefix.utf8CodeUnitCount
    return ct.count == n || ct[n] == UInt8(ascii: "+") || ct[n] == UInt8(ascii: ";")
  }
}

/// The response head and trailers as a client receives them. Pure.
struct ResponseHead {
  private(set) var httpStatus = 0
  private var contentTypeOK = false
  /// The response's message encoding (identity if no grpc-encoding came).
  private(set) var messageEncoding = MessageEncoding.identity
  /// A grpc-encoding we do not support, as received.
  private var unknownEncoding: String?
  /// The server's grpc-accept-encoding, if it sent one.
  private(set) var acceptedEncodings: AcceptedEncodings?
  private var error: String?
  private var grpcStatus: [UInt8]?
  private var grpcMessage = ""
  private(set) var initialMetadata: [MetadataEntry] = []
  private(set) var trailers: [MetadataEntry] = []

  /// One header field; `trailer`: it belongs to the trailers (or a trailers-only response).
  mutating func add(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, trailer: Bool) {
    if name.first == UInt8(ascii: ":") {
      if name.equals(":status") { httpStatus = Int(String(decoding: value, as: UTF8.self)) ?? 0 }
      return
    }
    if name.equals("content-type") {
      contentTypeOK = RequestHead.isGRPCContentType(value)
    } else if name.equals("grpc-status") {
      grpcStatus = Array(value)
    } else if name.equals("grpc-message") {
      grpcMessage = PercentEncoding.decode(value)
    } else if name.equals("grpc-encoding") {
      (messageEncoding, unknownEncoding) = MessageEncoding.parse(value)
    } else if name.equals("grpc-accept-encoding") {
      acceptedEncodings = AcceptedEncodings(header: value)
    } else if trailer {
      MetadataEntry.collect(name: name, value: value, into: &trailers, error: &error)
    } else {
      MetadataEntry.collect(name: name, value: value, into: &initialMetadata, error: &error)
    }
  }

  /// Checks the first header block (the head, or a trailers-only response): nil if it is a
  /// gRPC response, else the status the call ends with.
  func validateHead() -> Status? {
    if httpStatus != 200 {
      return Status(httpStatusCode(httpStatus), "HTTP status \(httpStatus) from the server")
    }
    if !contentTypeOK && grpcStatus == nil {
      return Status(.unknown, "the response content-type is not application/grpc")
    }
    if let unknownEncoding {
      return Status(.internalError, "the server used message encoding '\(unknownEncoding)', which this client does not support")
    }
    if let error { return Status(.internalError, error) }
    return nil
  }

  /// The status the trailers carry: `.success` with the server's status, or `.failure` with
  /// the status the call ends with when the trailers are not valid gRPC.
  func status() -> Result<Status, StatusFailure> {
    guard let raw = grpcStatus else {
      return .failure(StatusFailure(Status(.internalError, "the server sent no grpc-status")))
    }
    guard raw.count <= 3, raw.allSatisfy({ $0 >= 48 && $0 <= 57 }),
      let value = Int32(String(decoding: raw, as: UTF8.self)), let code = StatusCode(rawValue: value)
    else {
      return .failure(StatusFailure(
        Status(.unknown, "invalid grpc-status '\(String(decoding: raw, as: UTF8.self))'")))
    }
    if let error { return .failure(StatusFailure(Status(.internalError, error))) }
    return .success(Status(code, grpcMessage))
  }
}

extension MetadataEntry {
  /// Adds a received header field to `metadata` unless it is reserved; a `-bin` value that is
  /// not base64 is dropped and recorded in `error` (the first one).
  static func collect(
    name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>,
    into metadata: inout [MetadataEntry], error: inout String?
  ) {
    if MetadataValidation.isReserved(name) { return }
    let key = String(decoding: name, as: UTF8.self)
    if !MetadataEntry.appendFromWire(key: key, value: value, to: &metadata), error == nil {
      error = "metadata '\(key)' is not valid base64"
    }
  }
}

/// A status that ends a call because the peer broke the protocol.
struct StatusFailure: Error, Equatable {
  let status: Status
  init(_ status: Status) { self.status = status }
}

/// gRPC's mapping of an HTTP status (when there is no grpc-status) to a status code.
func httpStatusCode(_ http: Int) -> StatusCode {
  switch http {
  case 400: return .internalError
  case 401: return .unauthenticated
  case 403: return .permissionDenied
  case 404: return .unimplemented
  case 429, 502, 503, 504: return .unavailable
  default: return .unknown
  }
}

extension UnsafeBufferPointer<UInt8> {
  /// Byte-wise equality with a static ASCII string.
  @inline(__always)
  func equals(_ s: StaticString) -> Bool {
    count == s.utf8CodeUnitCount && (count == 0 || memcmp(baseAddress!, s.utf8Start, count) == 0)
  }

  func hasPrefix(_ s: StaticString) -> Bool {
    let n = s.utf8CodeUnitCount
    return count >= n && (n == 0 || memcmp(baseAddress!, s.utf8Start, n) == 0)
  }
}
