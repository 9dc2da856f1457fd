import CNGHTTP2

/// A list of header fields laid out in one buffer, handed to nghttp2 as an `nghttp2_nv` array.
/// nghttp2 copies names and values during the submit call, so the block only has to outlive it.
struct HeaderBlock {
  private var storage: [UInt8] = []
  private var fields: [(name: Int, nameLen: Int, value: Int, valueLen: Int)] = []
  /// A prebuilt field list of static strings (no allocation per call).
  private var fixed: StaticHeaders?

  init() {}

  private init(fixed: StaticHeaders) { self.fixed = fixed }

  /// `:status 200`, `content-type application/grpc`, `grpc-accept-encoding` (what we decode),
  /// and `grpc-encoding` when the messages are compressed.
  static func responseHeaders(_ encoding: MessageEncoding) -> HeaderBlock {
    switch encoding {
    case .identity: return plainResponseHeaders
    case .gzip: return gzipResponseHeaders
    case .deflate: return deflateResponseHeaders
    }
  }
  private static let plainResponseHeaders = HeaderBlock(fixed: StaticHeaders(responseFields))
  private static let gzipResponseHeaders = HeaderBlock(
    fixed: StaticHeaders(responseFields + [("grpc-encoding", "gzip")]))
  private static let deflateResponseHeaders = HeaderBlock(
    fixed: StaticHeaders(responseFields + [("grpc-encoding", "deflate")]))
  private static let responseFields: [(StaticString, StaticString)] = [
    (":status", "200"), ("content-type", "application/grpc"),
    ("grpc-accept-encoding", MessageEncoding.acceptValue),
  ]
  /// `grpc-status 0`.
  static let okTrailers = HeaderBlock(fixed: StaticHeaders([("grpc-status", "0")]))

  var isEmpty: Bool { fields.isEmpty }

  mutating func add(_ name: StaticString, _ value: StaticString) {
    add(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount),
        UnsafeBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
  }

  mutating func add(_ name: StaticString, _ value: some Collection<UInt8>) {
    add(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), value)
  }

  mutating func add(_ name: some Collection<UInt8>, _ value: some Collection<UInt8>) {
    let n = storage.count
    storage.append(contentsOf: name)
    let v = storage.count
    storage.append(contentsOf: value)
    fields.append((n, v - n, v, storage.count - v))
  }

  /// Adds host metadata: `-bin` values are base64-encoded (unpadded).
  mutating func add(metadata: [MetadataEntry]) {
    for entry in metadata {
      if entry.isBinary {
        add(entry.key.utf8, Base64.encode(entry.value))
      } else {
        add(entry.key.utf8, entry.value)
      }
    }
  }

  /// Adds grpc-status and (when non-empty) the percent-encoded grpc-message.
  mutating func add(status: Status) {
    add("grpc-status", String(status.code.rawValue).utf8)
    if !status.message.isEmpty { add("grpc-message", PercentEncoding.encode(status.message)) }
  }

  func withNV<T>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> T) -> T {
    if let fixed { return body(fixed.nva, fixed.count) }
    return storage.withUnsafeBufferPointer { raw in
      let base = UnsafeMutablePointer(mutating: raw.baseAddress ?? UnsafePointer(bitPattern: 1)!)
      let nva = fields.map { f in
        nghttp2_nv(
          name: base + f.name, value: base + f.value, namelen: f.nameLen, valuelen: f.valueLen,
          flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
      }
      return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
  }
}

/// An `nghttp2_nv` array of static strings, flagged NO_COPY: built once, never freed.
final class StaticHeaders: @unchecked Sendable {
  // @unchecked: immutable after init; nghttp2 only reads the array and the static strings.
  let nva: UnsafeMutablePointer<nghttp2_nv>
  let count: Int

  init(_ fields: [(StaticString, StaticString)]) {
    count = fields.count
    nva = .allocate(capacity: fields.count)
    let flags = UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)
    for (i, f) in fields.enumerated() {
      (nva + i).initialize(
        to: nghttp2_nv(
          name: UnsafeMutablePointer(mutating: f.0.utf8Start),
          value: UnsafeMutablePointer(mutating: f.1.utf8Start), namelen: f.0.utf8CodeUnitCount,
          valuelen: f.1.utf8CodeUnitCount, flags: flags))
    }
  }
}
