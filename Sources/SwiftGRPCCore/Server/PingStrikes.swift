/// gRFC A8's enforcement of the pings a client sends: a PING sooner than allowed after the last
/// one is a strike (sooner than `minInterval` while the server has sent nothing since; with no
/// call open and pings without calls not permitted, sooner than two hours); more than
/// `maxStrikes` strikes and the connection ends with GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
/// Sending DATA or HEADERS forgives (the client's pings keep a busy connection alive). As gRPC
/// C-core does. Pure.
struct PingStrikes {
  /// The interval allowed between pings when no call is open and such pings are not permitted.
  static let withoutCallsInterval: Int64 = 2 * 3600 * 1_000_000_000

  let minIntervalNanos: Int64
  /// 0: no limit.
  let maxStrikes: Int
  let permitWithoutCalls: Bool
  private var lastPing: Int64?
  private(set) var strikes = 0

  init(minIntervalNanos: Int64, maxStrikes: Int, permitWithoutCalls: Bool) {
    self.minIntervalNanos = minIntervalNanos
    self.maxStrikes = maxStrikes
    self.permitWithoutCalls = permitWithoutCalls
  }

  /// A PING (not an ack) arrived at `now`. Returns whether the client is over its strikes.
  mutating func pingReceived(at now: Int64, callsOpen: Bool) -> Bool {
    let allowed = callsOpen || permitWithoutCalls ? minIntervalNanos : PingStrikes.withoutCallsInterval
    if let last = lastPing, now - last < allowed { strikes += 1 }
    lastPing = now
    return maxStrikes > 0 && strikes > maxStrikes
  }

  /// The server sent DATA or HEADERS.
  mutating func forgive() {
    lastPing = nil
    strikes = 0
  }
}
