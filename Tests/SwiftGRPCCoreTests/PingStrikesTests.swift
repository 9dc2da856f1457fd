import Testing

@testable import SwiftGRPCCore

@Suite struct PingStrikesTests {
  let ms: Int64 = 1_000_000

  @Test func pingsSoonerThanTheMinimumAreStrikesAndTheThirdIsTooMany() {
    var p = PingStrikes(minIntervalNanos: 300_000 * ms, maxStrikes: 2, permitWithoutCalls: false)
    let verdicts = (0..<4).map { p.pingReceived(at: Int64($0) * ms, callsOpen: true) }
    #expect(verdicts == [false, false, false, true], "free, strike, strike, one too many")
    #expect(p.strikes == 3)
  }

  @Test func pingsAtTheIntervalAreFineAndSendingForgives() {
    var p = PingStrikes(minIntervalNanos: 100 * ms, maxStrikes: 2, permitWithoutCalls: false)
    let paced = (0..<10).map { p.pingReceived(at: Int64($0) * 100 * ms, callsOpen: true) }
    #expect(!paced.contains(true) && p.strikes == 0)
    _ = p.pingReceived(at: 950 * ms, callsOpen: true)
    _ = p.pingReceived(at: 960 * ms, callsOpen: true)
    #expect(p.strikes == 2)
    p.forgive()  // the server sent DATA or HEADERS
    let after = p.pingReceived(at: 961 * ms, callsOpen: true)
    #expect(!after && p.strikes == 0)
  }

  @Test func withNoCallOpenTheIntervalIsTwoHoursUnlessPermitted() {
    var strict = PingStrikes(minIntervalNanos: 100 * ms, maxStrikes: 2, permitWithoutCalls: false)
    _ = strict.pingReceived(at: 0, callsOpen: false)
    _ = strict.pingReceived(at: 60_000 * ms, callsOpen: false)
    #expect(strict.strikes == 1, "a minute later, with no call: a strike")
    var permitted = PingStrikes(minIntervalNanos: 100 * ms, maxStrikes: 2, permitWithoutCalls: true)
    _ = permitted.pingReceived(at: 0, callsOpen: false)
    _ = permitted.pingReceived(at: 60_000 * ms, callsOpen: false)
    #expect(permitted.strikes == 0)
  }

  @Test func zeroStrikesMeansNoLimit() {
    var p = PingStrikes(minIntervalNanos: Int64.max, maxStrikes: 0, permitWithoutCalls: false)
    let verdicts = (0..<1000).map { p.pingReceived(at: Int64($0), callsOpen: false) }
    #expect(!verdicts.contains(true) && p.strikes == 999)
  }
}
