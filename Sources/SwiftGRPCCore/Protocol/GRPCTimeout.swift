/// `grpc-timeout`: `1*8DIGIT unit`, unit one of H M S m u n.
public enum GRPCTimeout {
  /// Parses a header value into nanoseconds; nil if malformed.
  public static func parse(_ value: some Collection<UInt8>) -> Int64? {
    let bytes = Array(value)
    guard bytes.count >= 2, bytes.count <= 9 else { return nil }
    var amount: Int64 = 0
    for d in bytes.dropLast() {
      guard d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { return nil }
      amount = amount * 10 + Int64(d - UInt8(ascii: "0"))
    }
    let unitNanos: Int64
    switch bytes.last! {
    case UInt8(ascii: "H"): unitNanos = 3_600_000_000_000
    case UInt8(ascii: "M"): unitNanos = 60_000_000_000
    case UInt8(ascii: "S"): unitNanos = 1_000_000_000
    case UInt8(ascii: "m"): unitNanos = 1_000_000
    case UInt8(ascii: "u"): unitNanos = 1_000
    case UInt8(ascii: "n"): unitNanos = 1
    default: return nil
    }
    let (product, overflow) = amount.multipliedReportingOverflow(by: unitNanos)
    return overflow ? Int64.max : product
  }

  /// Encodes nanoseconds as the shortest exact-enough value of at most 8 digits.
  public static func encode(nanoseconds: Int64) -> String {
    let ns = max(nanoseconds, 0)
    let units: [(Int64, Character)] = [
      (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"),
      (3_600_000_000_000, "H"),
    ]
    for (size, unit) in units {
      let amount = ns / size + (ns % size == 0 ? 0 : 1)  // round up: never shorten a deadline
      if amount < 100_000_000 { return "\(amount)\(unit)" }
    }
    return "99999999H"
  }
}
