/// One metadata entry as the host sees it: a lowercase key and the value's bytes. Values of
/// `-bin` keys are raw bytes (base64 only on the wire); others are printable ASCII.
public struct MetadataEntry: Sendable, Equatable {
  public var key: String
  public var value: [UInt8]

  public init(key: String, value: [UInt8]) {
    self.key = key
    self.value = value
  }

  public init(_ key: String, _ value: String) {
    self.key = key
    self.value = Array(value.utf8)
  }

  /// Appends the entries of one received header field to `out`: a `-bin` value is a
  /// comma-separated list of base64 (padded or not), one entry each; other values are one
  /// entry. False (and `out` unchanged) if not base64.
  static func appendFromWire(
    key: String, value: UnsafeBufferPointer<UInt8>, to out: inout [MetadataEntry]
  ) -> Bool {
    guard MetadataValidation.isBinaryKey(key.utf8) else {
      out.append(MetadataEntry(key: key, value: Array(value)))
      return true
    }
    let start = out.count
    for part in value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
      guard let bytes = Base64.decode(part.drop { $0 == UInt8(ascii: " ") }) else {
        out.removeSubrange(start...)
        return false
      }
      out.append(MetadataEntry(key: key, value: bytes))
    }
    return true
  }

  /// Whether the key names a binary header (`-bin` suffix).
  public var isBinary: Bool { key.utf8.count > 4 && key.hasSuffix("-bin") }
}

/// Why a metadata entry cannot be sent.
public enum MetadataError: Error, Equatable, Sendable {
  case emptyKey
  case illegalKeyByte(key: String, byte: UInt8)
  case reservedKey(String)
  case illegalValueByte(key: String, byte: UInt8)
}

extension MetadataError: CustomStringConvertible {
  public var description: String {
    switch self {
    case .emptyKey:
      return "metadata key is empty"
    case .illegalKeyByte(let key, let byte):
      return "metadata key '\(key)' has illegal byte 0x\(hex(byte)) (allowed: 0-9 a-z _ - .)"
    case .reservedKey(let key):
      return "metadata key '\(key)' is reserved (grpc-*, pseudo headers, content-type, te)"
    case .illegalValueByte(let key, let byte):
      return "metadata value for '\(key)' has byte 0x\(hex(byte)) outside printable ASCII;"
        + " use a '-bin' key for binary values"
    }
  }
}

private func hex(_ b: UInt8) -> String {
  let digits = Array("0123456789ABCDEF")
  return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}

public enum MetadataValidation {
  /// Validates a key the host wants to send: `[0-9a-z_.-]+`, not reserved.
  public static func validate(key: some Collection<UInt8>) -> MetadataError? {
    if key.isEmpty { return .emptyKey }
    if key.first == UInt8(ascii: ":") { return .reservedKey(String(decoding: key, as: UTF8.self)) }
    for b in key {
      let ok =
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z"))
        || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
        || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
      if !ok { return .illegalKeyByte(key: String(decoding: key, as: UTF8.self), byte: b) }
    }
    if isReserved(key) { return .reservedKey(String(decoding: key, as: UTF8.self)) }
    return nil
  }

  /// Validates a non-binary value: printable ASCII 0x20–0x7E.
  public static func validate(value: some Collection<UInt8>, key: String) -> MetadataError? {
    for b in value where b < 0x20 || b > 0x7E {
      return .illegalValueByte(key: key, byte: b)
    }
    return nil
  }

  /// The trailer of a rich status: a serialized google.rpc.Status, binary.
  public static let statusDetailsKey = "grpc-status-details-bin"

  /// Headers that belong to the protocol, never passed to or accepted from hosts.
  public static func isReserved(_ key: some Collection<UInt8>) -> Bool {
    // Keys from the wire and C strings are contiguous (compared with memcmp); others are copied.
    key.withContiguousStorageIfAvailable(isReservedBytes)
      ?? Array(key).withUnsafeBufferPointer(isReservedBytes)
  }

  /// `isReserved` of contiguous bytes.
  static func isReservedBytes(_ key: UnsafeBufferPointer<UInt8>) -> Bool {
    if key.first == UInt8(ascii: ":") { return true }
    // grpc-* belongs to the protocol, but for the rich status (google.rpc.Status), which hosts
    // set and read as a trailer (grpc-status-details-bin; gRPC's own libraries pass it through).
    if key.hasPrefix("grpc-") { return !key.equals("grpc-status-details-bin") }
    // By length first: most keys a server sees match none of these, and are told so by one
    // comparison of their length.
    switch key.count {
    case 2: return key.equals("te")
    case 4: return key.equals("host")
    case 7: return key.equals("upgrade")
    case 10: return key.equals("connection") || key.equals("keep-alive")
    case 12: return key.equals("content-type")
    case 16: return key.equals("proxy-connection")
    case 17: return key.equals("transfer-encoding")
    default: return false
    }
  }

  public static func isBinaryKey(_ key: some BidirectionalCollection<UInt8>) -> Bool {
    guard key.count > 4 else { return false }
    var i = key.index(key.endIndex, offsetBy: -4)
    for b in "-bin".utf8 {
      if key[i] != b { return false }
      key.formIndex(after: &i)
    }
    return true
  }
}
