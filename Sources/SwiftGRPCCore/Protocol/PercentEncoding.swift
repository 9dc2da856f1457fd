/// Percent-encoding of `grpc-message`, as the gRPC over HTTP/2 spec defines it: bytes outside
/// 0x20–0x7E and '%' itself become `%XX` of the UTF-8 encoding (and a space at either end).
public enum PercentEncoding {
  private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

  public static func encode(_ message: String) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(message.utf8.count)
    let bytes = message.utf8
    let last = bytes.count - 1
    for (i, b) in bytes.enumerated() {
      // Spaces at either end are escaped too: HTTP/2 forbids them around a field value, and
      // strict peers (nghttp2) reset the stream otherwise.
      let edgeSpace = b == UInt8(ascii: " ") && (i == 0 || i == last)
      if b >= 0x20 && b <= 0x7E && b != UInt8(ascii: "%") && !edgeSpace {
        out.append(b)
      } else {
        out.append(UInt8(ascii: "%"))
        out.append(hexDigits[Int(b >> 4)])
        out.append(hexDigits[Int(b & 0xF)])
      }
    }
    return out
  }

  /// Decodes leniently: a malformed escape is kept as it is, as the spec asks.
  public static func decode(_ bytes: some Collection<UInt8>) -> String {
    let input = Array(bytes)
    var out = [UInt8]()
    out.reserveCapacity(input.count)
    var i = 0
    while i < input.count {
      if input[i] == UInt8(ascii: "%"), i + 2 < input.count,
        let hi = hexValue(input[i + 1]), let lo = hexValue(input[i + 2])
      {
        out.append(hi << 4 | lo)
        i += 3
      } else {
        out.append(input[i])
        i += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  private static func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
  }
}
