/// Saturating time arithmetic. Deadlines are absolute `monotonicNanos()` values; `Time.never`
/// (`Int64.max`) means none. Every sum of a time and a duration goes through here, so no value a
/// host or a peer gives can overflow.
public enum Time {
  public static let never = Int64.max

  /// `now + nanos`, saturating at `never`; a negative duration gives `now`.
  @inline(__always)
  public static func deadline(after nanos: Int64, now: Int64 = monotonicNanos()) -> Int64 {
    if nanos <= 0 { return now }
    return nanos >= never - now ? never : now + nanos
  }

  /// `millis` milliseconds in nanoseconds, saturating at `never`; negative gives 0.
  @inline(__always)
  public static func nanos(millis: Int64) -> Int64 {
    if millis <= 0 { return 0 }
    return millis >= never / 1_000_000 ? never : millis * 1_000_000
  }

  /// `a + b`, saturating at the bounds of Int64.
  @inline(__always)
  public static func add(_ a: Int64, _ b: Int64) -> Int64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b > 0 ? Int64.max : Int64.min) : sum
  }

  /// A Double of nanoseconds as Int64, saturating (and 0 for NaN).
  public static func saturating(_ d: Double) -> Int64 {
    if d.isNaN { return 0 }
    if d >= 9.223_372_036_854_775e18 { return Int64.max }
    if d <= -9.223_372_036_854_775e18 { return Int64.min }
    return Int64(d)
  }

  /// The milliseconds from `now` to `deadline`, rounded up and capped at `cap`, for a poll
  /// timeout: 0 when the deadline has passed.
  @inline(__always)
  static func millisUntil(_ deadline: Int64, now: Int64, cap: Int64) -> Int32 {
    if deadline <= now { return 0 }
    let remaining = deadline - now  // > 0, no overflow: both are valid Int64 with deadline > now
    let ms = remaining / 1_000_000 + (remaining % 1_000_000 == 0 ? 0 : 1)
    return Int32(min(ms, cap))
  }
}
