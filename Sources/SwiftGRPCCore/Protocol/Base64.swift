/// Base64 for `-bin` metadata values: the wire form is emitted unpadded, as the gRPC spec
/// recommends, and both padded and unpadded forms are accepted.
public enum Base64 {
  private static let alphabet: [UInt8] = Array(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  private static let decodeTable: [UInt8] = {
    var t = [UInt8](repeating: 0xFF, count: 256)
    for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
    return t
  }()

  /// Encodes without padding.
  public static func encode(_ bytes: some Collection<UInt8>) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var it = bytes.makeIterator()
    while let a = it.next() {
      let b = it.next()
      let c = it.next()
      out.append(alphabet[Int(a >> 2)])
      out.append(alphabet[Int(((a & 0x3) << 4) | ((b ?? 0) >> 4))])
      if let b {
        out.append(alphabet[Int(((b & 0xF) << 2) | ((c ?? 0) >> 6))])
        if let c { out.append(alphabet[Int(c & 0x3F)]) }
      }
    }
    return out
  }

  /// Decodes padded or unpadded base64; nil if malformed.
  public static func decode(_ input: some Collection<UInt8>) -> [UInt8]? {
    var chars = Array(input)
    // Strip up to two '=' of padding; the length must then be a valid unpadded length.
    var padding = 0
    while chars.last == UInt8(ascii: "=") && padding < 2 {
      chars.removeLast()
      padding += 1
    }
    if padding > 0 && (chars.count + padding) % 4 != 0 { return nil }
    if chars.count % 4 == 1 { return nil }
    var out = [UInt8]()
    out.reserveCapacity(chars.count * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    for c in chars {
      let v = decodeTable[Int(c)]
      if v == 0xFF { return nil }
      acc = (acc << 6) | UInt32(v)
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8((acc >> UInt32(bits)) & 0xFF))
      }
    }
    // Leftover bits must be zero for a canonical encoding; accept non-canonical like grpc does.
    return out
  }
}
