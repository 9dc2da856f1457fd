/// A per-connection token bucket for frames that make no progress on any call: PING, SETTINGS,
/// WINDOW_UPDATE, PRIORITY, RST_STREAM, empty DATA without END_STREAM, unknown frame types.
/// Each costs a token; the bucket refills at `perSecond` up to `perSecond` tokens, and every
/// DATA frame the connection sends earns `earnedPerDataFrame` back (a peer rightly answers data
/// with WINDOW_UPDATEs for the stream and the connection, and bandwidth pings). A peer that
/// empties it is flooding: the connection ends with GOAWAY ENHANCE_YOUR_CALM. Pure.
struct FrameBudget: Equatable {
  static let earnedPerDataFrame: Int64 = 4
  let capacity: Int64
  private(set) var tokens: Int64
  private var refilledAt: Int64

  /// `perSecond` 0 disables the budget.
  init(perSecond: Int64, now: Int64) {
    capacity = max(0, perSecond)
    tokens = capacity
    refilledAt = now
  }

  /// Spends a token for a control frame; false once the peer has exhausted the budget.
  mutating func spend(now: Int64) -> Bool {
    if capacity == 0 { return true }
    if tokens == 0 { refill(now: now) }
    guard tokens > 0 else { return false }
    tokens -= 1
    return true
  }

  /// A DATA frame we sent earns tokens back.
  mutating func earn() {
    tokens = min(capacity, tokens + FrameBudget.earnedPerDataFrame)
  }

  private mutating func refill(now: Int64) {
    let elapsed = now - refilledAt
    guard elapsed > 0 else { return }
    if elapsed >= 1_000_000_000 {
      tokens = capacity
      refilledAt = now
      return
    }
    let gained = elapsed * capacity / 1_000_000_000  // elapsed < 1e9, capacity <= Int32.max
    guard gained > 0 else { return }
    tokens = min(capacity, tokens + gained)
    refilledAt += gained * 1_000_000_000 / capacity
  }
}
