import CNGHTTP2

/// A list of header fields laid out in one buffer, handed to nghttp2 as an `nghttp2_nv` array.
/// nghttp2 copies names and values during the submit call, so the block only has to outlive it.
struct HeaderBlock {
  private var storage: [UInt8] = []
  private var fields: [(name: Int, nameLen: Int, value: Int, valueLen: Int)] = []

  init() { storage.reserveCapacity(128) }

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
    storage.withUnsafeBufferPointer { raw in
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
