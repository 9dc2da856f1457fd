import CZlib

/// gRPC message encodings (the "gRPC over HTTP/2" spec's `grpc-encoding`): identity, and the two
/// zlib formats gRPC names — "gzip" (RFC 1952) and "deflate" (the zlib format, RFC 1950).
public enum MessageEncoding: String, Sendable, CaseIterable {
  case identity
  case gzip
  case deflate

  /// zlib's windowBits for the format: 15 for the zlib wrapper, +16 for gzip's.
  fileprivate var windowBits: Int32 { self == .gzip ? 31 : 15 }

  /// The value of `grpc-accept-encoding` we send: every encoding we decode.
  public static let acceptValue: StaticString = "identity,deflate,gzip"
  public static let acceptHeader = acceptValue.description

  /// The encoding a `grpc-encoding` value names (case-sensitive, as the spec's are), or nil if
  /// we do not support it.
  public init?(wire: some Collection<UInt8>) {
    guard let e = MessageEncoding(rawValue: String(decoding: wire, as: UTF8.self)) else { return nil }
    self = e
  }

  /// The encoding of a compression algorithm number: gRPC C-core's `grpc_compression_algorithm`
  /// (0 none, 1 deflate, 2 gzip), which grpcio's `grpc.Compression` and the gem reuse.
  public init?(algorithm: Int64) {
    switch algorithm {
    case 0: self = .identity
    case 1: self = .deflate
    case 2: self = .gzip
    default: return nil
    }
  }

  /// The `grpc-encoding` header value of a compressed message stream.
  var headerValue: StaticString {
    switch self {
    case .identity: return "identity"
    case .gzip: return "gzip"
    case .deflate: return "deflate"
    }
  }

  /// A received `grpc-encoding`: the encoding, or identity and the unsupported name.
  static func parse(_ wire: some Collection<UInt8>) -> (MessageEncoding, unknown: String?) {
    if let e = MessageEncoding(wire: wire) { return (e, nil) }
    return (.identity, String(decoding: wire, as: UTF8.self))
  }
}

/// The encodings a peer accepts (its `grpc-accept-encoding`), of those we support. Identity is
/// always accepted: every gRPC peer reads uncompressed messages.
public struct AcceptedEncodings: Sendable, Equatable {
  private let bits: UInt8
  private init(bits: UInt8) { self.bits = bits | 1 }

  public static let identityOnly = AcceptedEncodings(bits: 1)
  public static let all = AcceptedEncodings(bits: 0b111)

  private static func bit(_ e: MessageEncoding) -> UInt8 {
    switch e {
    case .identity: return 1
    case .deflate: return 2
    case .gzip: return 4
    }
  }

  public func accepts(_ e: MessageEncoding) -> Bool { bits & AcceptedEncodings.bit(e) != 0 }

  /// A `grpc-accept-encoding` value: comma-separated names, spaces around them allowed; names we
  /// do not support are skipped.
  public init(header: some Collection<UInt8>) {
    func isSeparator(_ b: UInt8) -> Bool { b == UInt8(ascii: ",") || b == 0x20 || b == 0x09 }
    var bits: UInt8 = 1
    var i = header.startIndex
    while i != header.endIndex {
      while i != header.endIndex, isSeparator(header[i]) { i = header.index(after: i) }
      let start = i
      while i != header.endIndex, !isSeparator(header[i]) { i = header.index(after: i) }
      if start != i, let e = MessageEncoding(wire: header[start..<i]) {
        bits |= AcceptedEncodings.bit(e)
      }
    }
    self.init(bits: bits)
  }

  /// These, without `e` (never identity).
  public func removing(_ e: MessageEncoding) -> AcceptedEncodings {
    AcceptedEncodings(bits: bits & ~(e == .identity ? 0 : AcceptedEncodings.bit(e)))
  }

  /// The encoding to send with: `wanted` if the peer accepts it, else identity (never compress
  /// toward a peer that did not say it can read it).
  public func choose(_ wanted: MessageEncoding) -> MessageEncoding {
    accepts(wanted) ? wanted : .identity
  }
}

/// Why a compressed message could not be inflated.
public enum InflateError: Error, Equatable, Sendable {
  /// It inflates to more than the limit: nothing beyond the limit was allocated.
  case tooLarge(limit: Int)
  /// Not valid data of its format (or truncated).
  case corrupt(String)
}

/// One loop thread's zlib streams, one per format and direction, reset and reused for every
/// message (a deflate stream costs ~256 KiB to set up). Loop-bound: not thread-safe.
public final class ZlibCodec {
  private var inflaters: [MessageEncoding: UnsafeMutablePointer<z_stream>] = [:]
  private var deflaters: [MessageEncoding: UnsafeMutablePointer<z_stream>] = [:]

  public init() {}

  deinit {
    for (_, s) in inflaters { inflateEnd(s); s.deallocate() }
    for (_, s) in deflaters { deflateEnd(s); s.deallocate() }
  }

  /// The compressed form of `input` (the whole message) in `encoding` (not identity); nil if
  /// zlib could not (out of memory): the message then goes uncompressed.
  public func compress(_ input: UnsafeRawBufferPointer, _ encoding: MessageEncoding) -> [UInt8]? {
    guard encoding != .identity, let s = deflater(encoding) else { return nil }
    defer { deflateReset(s) }
    let bound = Int(deflateBound(s, uLong(input.count)))
    var out = [UInt8](repeating: 0, count: bound)
    let produced = out.withUnsafeMutableBytes { o -> Int? in
      s.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
      s.pointee.avail_in = uInt(input.count)
      s.pointee.next_out = o.baseAddress!.assumingMemoryBound(to: UInt8.self)
      s.pointee.avail_out = uInt(o.count)
      // The output has deflateBound's room: one Z_FINISH call completes.
      guard deflate(s, Z_FINISH) == Z_STREAM_END else { return nil }
      return o.count - Int(s.pointee.avail_out)
    }
    guard let produced else { return nil }
    out.removeSubrange(produced...)
    return out
  }

  /// Inflates one whole message. Its output buffer never grows past `limit` + 1 bytes: a
  /// message that inflates beyond the limit is refused as soon as it gets there.
  public func decompress(
    _ input: UnsafeRawBufferPointer, _ encoding: MessageEncoding, limit: Int
  ) -> Result<[UInt8], InflateError> {
    guard encoding != .identity else { return .failure(.corrupt("identity is not compressed")) }
    guard let s = inflater(encoding) else { return .failure(.corrupt("zlib could not allocate")) }
    defer { inflateReset(s) }
    var out: [UInt8] = []
    // A guess that fits most messages at once, bounded by the limit.
    let chunk = Swift.max(256, Swift.min(Swift.max(input.count * 4, 4096), 1 << 20))
    s.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
    s.pointee.avail_in = uInt(input.count)
    while true {
      let room = Swift.min(chunk, limit - out.count + 1)  // one byte over the limit tells
      let start = out.count
      // Grown geometrically, but never past the limit (+1): a bomb holds no more than that.
      if start + room > out.capacity {
        out.reserveCapacity(Swift.min(limit + 1, Swift.max(start + room, out.capacity * 2)))
      }
      out.append(contentsOf: repeatElement(0, count: room))
      let rc = out.withUnsafeMutableBytes { o -> Int32 in
        s.pointee.next_out = o.baseAddress!.assumingMemoryBound(to: UInt8.self) + start
        s.pointee.avail_out = uInt(room)
        return inflate(s, Z_NO_FLUSH)
      }
      out.removeSubrange((out.count - Int(s.pointee.avail_out))...)
      if out.count > limit { return .failure(.tooLarge(limit: limit)) }
      switch rc {
      case Z_STREAM_END:
        if s.pointee.avail_in != 0 {
          return .failure(.corrupt("\(encoding.rawValue) data continues after its end"))
        }
        return .success(out)
      case Z_OK:
        continue
      case Z_BUF_ERROR:
        // No progress: out of input before the end (out of room cannot be: room was given).
        return .failure(.corrupt("\(encoding.rawValue) data is truncated"))
      default:
        let why = s.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
        return .failure(.corrupt("\(encoding.rawValue) data is corrupt: \(why)"))
      }
    }
  }

  private func inflater(_ e: MessageEncoding) -> UnsafeMutablePointer<z_stream>? {
    if let s = inflaters[e] { return s }
    guard let s = ZlibCodec.stream({ swiftgrpc_inflate_init2($0, e.windowBits) }) else { return nil }
    inflaters[e] = s
    return s
  }

  private func deflater(_ e: MessageEncoding) -> UnsafeMutablePointer<z_stream>? {
    if let s = deflaters[e] { return s }
    guard let s = ZlibCodec.stream({ swiftgrpc_deflate_init2($0, e.windowBits) }) else { return nil }
    deflaters[e] = s
    return s
  }

  /// A z_stream set up by `initialize`; nil (nothing kept) if zlib failed (out of memory).
  private static func stream(
    _ initialize: (UnsafeMutablePointer<z_stream>) -> Int32
  ) -> UnsafeMutablePointer<z_stream>? {
    let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    s.initialize(to: z_stream())
    guard initialize(s) == Z_OK else {
      s.deallocate()
      return nil
    }
    return s
  }
}
