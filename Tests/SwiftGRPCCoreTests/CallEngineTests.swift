import Testing

@testable import SwiftGRPCCore

@Suite struct CallStateMachineTests {
  @Test func serverHostOperationsFollowTheKind() throws {
    var unary = CallStateMachine(role: .server, kind: .unary)
    #expect(throws: CallStateMachine.Refusal.wrongState("reads are only for client- and bidi-streaming calls")) {
      try unary.host(.read)
    }
    try unary.host(.send([1]))
    #expect(throws: CallStateMachine.Refusal.wrongState("a unary method sends at most one response message")) {
      try unary.host(.send([2]))
    }
    #expect(throws: CallStateMachine.Refusal.wrongState("a unary method sends at most one response message")) {
      try unary.host(.complete(message: [2], status: Status(.ok), trailers: []))
    }
    try unary.host(.complete(message: nil, status: Status(.ok), trailers: []))
    #expect(throws: CallStateMachine.Refusal.alreadyCompleted) { try unary.host(.read) }
    do {
      let r1 = unary.end()
      #expect(r1 == CallStateMachine.Ending(), "completed: the host is owed nothing")
    }
    #expect(throws: CallStateMachine.Refusal.ended) { try unary.host(.read) }
  }

  @Test func oneSendDonePerSend() throws {
    var m = CallStateMachine(role: .server, kind: .serverStreaming)
    try m.host(.send([1]))
    try m.host(.send([2]))
    do {
      let r1 = m.sendCompleted()
      let r2 = m.sendCompleted()
      #expect(r1 && r2)
    }
    do {
      let r1 = m.sendCompleted()
      #expect(!r1, "one SEND_DONE per send")
    }
    try m.host(.send([2]))
    // Completing with a send outstanding is allowed; its SEND_DONE is then not delivered.
    try m.host(.complete(message: nil, status: Status(.ok), trailers: []))
    do {
      let r1 = m.sendCompleted()
      #expect(!r1)
    }
  }

  @Test func readsAnswerOnceAndTheEndOnlyOnce() throws {
    var m = CallStateMachine(role: .server, kind: .bidiStreaming)
    do {
      let r1 = m.readAnswered(endOfStream: false)
      #expect(!r1, "no read outstanding")
    }
    try m.host(.read)
    #expect(throws: CallStateMachine.Refusal.wrongState("a read is already outstanding")) { try m.host(.read) }
    do {
      let r1 = m.readAnswered(endOfStream: false)
      #expect(r1)
    }
    try m.host(.read)
    do {
      let r1 = m.readAnswered(endOfStream: true)
      #expect(r1)
    }
    #expect(throws: CallStateMachine.Refusal.wrongState("the client already half-closed")) { try m.host(.read) }
  }

  @Test func endingTellsWhatTheHostWaitedFor() throws {
    var server = CallStateMachine(role: .server, kind: .bidiStreaming)
    try server.host(.read)
    do {
      let r1 = server.end()
      #expect(r1 == CallStateMachine.Ending(cancelHost: true))
    }
    do {
      let r1 = server.end()
      #expect(r1 == CallStateMachine.Ending(), "twice: nothing")
    }
    do {
      let r1 = server.readAnswered(endOfStream: false)
      #expect(!r1)
    }

    var client = CallStateMachine(role: .client, kind: .bidiStreaming)
    try client.host(.send([1]))
    try client.host(.read)
    do {
      let r1 = client.end()
      #expect(r1 == CallStateMachine.Ending(sendsOutstanding: 1, readsOutstanding: 1))
    }
    #expect(throws: CallStateMachine.Refusal.ended) { try client.host(.cancel) }
  }

  @Test func aClientMayHaveManyReadsOutstandingAnsweredInOrder() throws {
    var m = CallStateMachine(role: .client, kind: .serverStreaming)
    for _ in 0..<CallStateMachine.maxOutstandingReads { try m.host(.read) }
    #expect(throws: CallStateMachine.Refusal.wrongState("256 reads are already outstanding")) { try m.host(.read) }
    do {
      let r1 = m.readAnswered(endOfStream: false)
      #expect(r1)
    }
    #expect(m.readsOutstanding == CallStateMachine.maxOutstandingReads - 1)
    try m.host(.read)  // a slot freed
    do {
      let r1 = m.end()
      #expect(r1 == CallStateMachine.Ending(readsOutstanding: CallStateMachine.maxOutstandingReads),
              "each outstanding read gets its event at the end")
    }
  }

  @Test func clientRules() throws {
    var unary = CallStateMachine(role: .client, kind: .unary)
    #expect(unary.hostClosed, "a unary request half-closes by itself")
    #expect(throws: CallStateMachine.Refusal.wrongState("a unary call sends its one request at start")) {
      try unary.host(.send([1]))
    }
    #expect(throws: CallStateMachine.Refusal.wrongState("a unary call gets its response with the STATUS event")) {
      try unary.host(.read)
    }
    var stream = CallStateMachine(role: .client, kind: .clientStreaming)
    try stream.host(.halfClose)
    #expect(throws: CallStateMachine.Refusal.wrongState("the call was half-closed: no more messages")) {
      try stream.host(.send([1]))
    }
    #expect(throws: CallStateMachine.Refusal.wrongState("the call is already half-closed")) {
      try stream.host(.halfClose)
    }
    try stream.host(.cancel)
    try stream.host(.cancel)
  }

  @Test func responseEndsTrailersOnlyWhenNothingWentOut() {
    var quiet = CallStateMachine(role: .server, kind: .unary)
    do {
      let r1 = quiet.endResponse(withMessage: false)
      #expect(r1 == .trailersOnly)
    }
    do {
      let r1 = quiet.endResponse(withMessage: false)
      #expect(r1 == .none)
    }

    var withMessage = CallStateMachine(role: .server, kind: .unary)
    do {
      let r1 = withMessage.endResponse(withMessage: true)
      #expect(r1 == .trailers(submitHeaders: true))
    }

    var streamed = CallStateMachine(role: .server, kind: .serverStreaming)
    do {
      let r1 = streamed.openResponse()
      #expect(r1)
    }
    do {
      let r1 = streamed.openResponse()
      #expect(!r1)
    }
    do {
      let r1 = streamed.endResponse(withMessage: false)
      #expect(r1 == .trailers(submitHeaders: false))
    }
  }

  @Test func clientClassifiesResponseBlocks() {
    var a = CallStateMachine(role: .client, kind: .unary)
    do {
      let r1 = a.responseHeadersReceived(endsStream: false)
      #expect(r1 == .head)
    }
    do {
      let r1 = a.responseHeadersReceived(endsStream: true)
      #expect(r1 == .trailers)
    }
    var b = CallStateMachine(role: .client, kind: .unary)
    do {
      let r1 = b.responseHeadersReceived(endsStream: true)
      #expect(r1 == .trailersOnly)
    }
  }
}

@Suite struct MessageBufferTests {
  private func framed(_ m: [UInt8]) -> [UInt8] {
    var out = [UInt8]()
    m.withUnsafeBytes { MessageFramer.appendFramed($0, to: &out) }
    return out
  }

  @Test func holdsCreditWhileAMessageWaits() throws {
    var b = MessageBuffer(maxReceiveMessageSize: 100)
    let wire = framed([1, 2, 3]) + framed([4])
    // A partial message: its credit is returned at once (the rest must be able to arrive).
    let first = try wire[0..<4].withUnsafeBytes { try b.receive($0) }
    #expect(first == 4)
    #expect(b.hasPartialMessage && !b.hasMessage)
    // The rest completes both messages: the credit is held until the host takes them.
    let second = try wire[4...].withUnsafeBytes { try b.receive($0) }
    #expect(second == 0)
    do {
      let r1 = b.nextMessage()!
      #expect(r1 == ([1, 2, 3], false, 0))
    }
    let last = b.nextMessage()!
    #expect(last.message == [4] && last.credit == wire.count - 4)
    do {
      let r1 = b.nextMessage()
      #expect(r1 == nil)
    }
  }

  @Test func tooLargeIsRefusedBeforeThePayload() {
    var b = MessageBuffer(maxReceiveMessageSize: 2)
    let header: [UInt8] = [0, 0, 0, 0, 3]
    #expect(throws: MessageDeframer.Failure.tooLarge(length: 3, limit: 2)) {
      _ = try header.withUnsafeBytes { try b.receive($0) }
    }
    do {
      let r1 = b.dropReceived()
      #expect(r1 == 5)
    }
  }

  @Test func sendIsDoneWhenNghttp2HasTakenAllOfIt() {
    var b = MessageBuffer(maxReceiveMessageSize: 100)
    b.enqueue([1, 2, 3], completesSend: false)
    b.enqueue([4, 5], completesSend: true)
    var out = [UInt8](repeating: 0, count: 64)
    let r1 = out.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, length: 9) }
    #expect(r1.count == 9 && r1.sendsDone == 0)
    let r2 = out.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, length: 64) }
    #expect(r2.count == 6 && r2.sendsDone == 1)
    #expect(!b.hasOutbound)
    let r3 = out.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, length: 64) }
    #expect(r3.count == 0 && r3.sendsDone == 0)
  }

  @Test func outstandingSendsAreDoneInOrderAsTheirBytesAreTaken() {
    var b = MessageBuffer(maxReceiveMessageSize: 100)
    for m in [[1], [2, 2], [3, 3, 3]] as [[UInt8]] { b.enqueue(m, completesSend: true) }  // 6, 7, 8 framed bytes
    var out = [UInt8](repeating: 0, count: 64)
    let r1 = out.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, length: 14) }
    #expect(r1.count == 14 && r1.sendsDone == 2, "two whole messages taken")
    let r2 = out.withUnsafeMutableBytes { b.read(into: $0.baseAddress!, length: 64) }
    #expect(r2.count == 7 && r2.sendsDone == 1)
    var m = CallStateMachine(role: .server, kind: .serverStreaming)
    for _ in 0..<CallStateMachine.maxOutstandingSends { try? m.host(.send([0])) }
    #expect(m.sendsOutstanding == CallStateMachine.maxOutstandingSends)
    #expect(throws: CallStateMachine.Refusal.wrongState("64 sends are outstanding: wait for a SEND_DONE event")) {
      try m.host(.send([0]))
    }
    #expect(m.sendCompleted() && m.sendsOutstanding == CallStateMachine.maxOutstandingSends - 1)
  }
}

@Suite struct FrameBudgetTests {
  @Test func floodsRunOutAndTheBudgetRefills() {
    var budget = FrameBudget(perSecond: 10, now: 0)
    for _ in 0..<10 {
      let ok = budget.spend(now: 0)
      #expect(ok)
    }
    do {
      let r1 = budget.spend(now: 0)
      #expect(!r1)
    }
    do {
      let r1 = budget.spend(now: 50_000_000)
      #expect(!r1, "5 ms: not a whole token yet")
    }
    do {
      let r1 = budget.spend(now: 100_000_000)
      #expect(r1, "0.1 s: one token back")
    }
    do {
      let r1 = budget.spend(now: 100_000_000)
      #expect(!r1)
    }
    budget.earn()
    for _ in 0..<FrameBudget.earnedPerDataFrame {
      let ok = budget.spend(now: 100_000_000)
      #expect(ok, "a DATA frame sent earns tokens")
    }
    do {
      let r1 = budget.spend(now: 100_000_000)
      #expect(!r1)
    }
    for _ in 0..<10 {
      let ok = budget.spend(now: 5_000_000_000)
      #expect(ok)
    }
    do {
      let r1 = budget.spend(now: 5_000_000_000)
      #expect(!r1, "never more than the burst")
    }
  }

  @Test func zeroDisablesIt() {
    var budget = FrameBudget(perSecond: 0, now: 0)
    for _ in 0..<10_000 {
      let ok = budget.spend(now: 0)
      #expect(ok)
    }
  }
}

@Suite struct TimeTests {
  @Test func sumsSaturate() {
    #expect(Time.deadline(after: Int64.max, now: 5) == Time.never)
    #expect(Time.deadline(after: Int64.max - 5, now: 5) == Time.never)
    #expect(Time.deadline(after: -1, now: 5) == 5)
    #expect(Time.nanos(millis: Int64.max) == Time.never)
    #expect(Time.nanos(millis: Int64.max / 1_000_000) == Time.never)
    #expect(Time.nanos(millis: -3) == 0)
    #expect(Time.add(Int64.max, 1) == Int64.max && Time.add(Int64.min, -1) == Int64.min)
    #expect(Time.saturating(1e300) == Int64.max && Time.saturating(-1e300) == Int64.min)
    #expect(Time.saturating(.nan) == 0)
    #expect(Time.millisUntil(Int64.max, now: 1, cap: 60_000) == 60_000)
    #expect(Time.millisUntil(10, now: 20, cap: 60_000) == 0)
    #expect(Time.millisUntil(1_000_001, now: 0, cap: 60_000) == 2)
  }

  @Test func backoffNeverOverflows() {
    var config = Channel.Config()
    config.initialBackoffNanos = Int64.max / 2
    config.maxBackoffNanos = Int64.max
    config.backoffMultiplier = 1e10
    var b = Backoff(config)
    for _ in 0..<5 { #expect(b.next() > 0) }
  }

  @Test func timeoutsOfAnySizeEncodeWithinEightDigits() {
    for ns: Int64 in [0, 1, 999, 100_000_000, Int64.max - 1, Int64.max] {
      let text = GRPCTimeout.encode(nanoseconds: ns)
      #expect(text.count <= 9, "\(text)")
      #expect(GRPCTimeout.parse(Array(text.utf8)) != nil)
    }
  }
}

@Suite struct RequestHeadTests {
  private func head(_ fields: [(String, String)]) -> RequestHead {
    var h = RequestHead()
    for (n, v) in fields {
      var n = n
      var v = v
      n.withUTF8 { nb in v.withUTF8 { vb in h.add(name: nb, value: vb) } }
    }
    return h
  }

  private let base = [(":method", "POST"), (":path", "/a/B"), ("content-type", "application/grpc"),
                      ("te", "trailers")]

  @Test func acceptsAGRPCRequestAndItsTimeout() throws {
    #expect(try head(base).validate().get() == nil)
    #expect(try head(base + [("grpc-timeout", "5S")]).validate().get() == 5_000_000_000)
    #expect(try head(base + [("grpc-timeout", "99999999H")]).validate().get() == Int64.max)
  }

  @Test func malformedTimeoutsAreInternal() {
    for bad in ["1X", "-1S", "99999999999H", "S", "", "1.5S"] {
      guard case .failure(.grpc(let status, _)) = head(base + [("grpc-timeout", bad)]).validate() else {
        Issue.record("'\(bad)' accepted")
        continue
      }
      #expect(status.code == .internalError, "'\(bad)'")
    }
  }

  @Test func nonGRPCRequestsAreRejected() {
    guard case .failure(.http(let code, _)) = head([(":method", "POST")]).validate() else {
      Issue.record("no content-type accepted")
      return
    }
    #expect(code.description == "415")
    guard case .failure(.grpc(let s, let reserved)) = head(base + [("grpc-encoding", "br")]).validate()
    else {
      Issue.record("unknown encoding accepted")
      return
    }
    #expect(s.code == .unimplemented && reserved == [MetadataEntry("grpc-accept-encoding", "identity,deflate,gzip")])
  }

  @Test func knownEncodingsAreAccepted() throws {
    for (name, e) in [("gzip", MessageEncoding.gzip), ("deflate", .deflate), ("identity", .identity)] {
      let h = head(base + [("grpc-encoding", name)])
      #expect(try h.validate().get() == nil)
      #expect(h.messageEncoding == e)
    }
    #expect(head(base).messageEncoding == .identity)
  }

  @Test func nonASCIIValuesPassThrough() {
    let h = head(base + [("x-name", "café")])
    #expect(h.metadata == [MetadataEntry(key: "x-name", value: Array("café".utf8))])
  }
}

@Suite struct EventQueueRetractionTests {
  @Test func aRetractedElementIsNeverReturned() {
    let dropped = Locked([Int]())
    let q = EventQueue<Int>(onDrop: { v in dropped.withLock { $0.append(v) } })
    q.push(1, retractionKey: 11)
    q.push(2, retractionKey: 12)
    q.push(3)
    #expect(q.retract(11))
    #expect(!q.retract(11), "only once")
    #expect(!q.retract(99), "never pushed")
    guard case .element(2) = q.next(deadline: 0) else { Issue.record("expected 2"); return }
    #expect(!q.retract(12), "already taken")
    guard case .element(3) = q.next(deadline: 0) else { Issue.record("expected 3"); return }
    guard case .timedOut = q.next(deadline: 0) else { Issue.record("expected empty"); return }
    #expect(dropped.withLock { $0 } == [1])
  }

  @Test func aBatchTakesWhatIsQueuedUpToMaxSkippingRetracted() {
    let q = EventQueue<Int>()
    for i in 1...5 { q.push(i, retractionKey: UInt64(i)) }
    #expect(q.retract(2))
    var taken: [Int] = []
    guard case .element(1) = q.nextBatch(deadline: 0, max: 3, into: &taken) else { Issue.record("first"); return }
    #expect(taken == [1, 3, 4], "max 3, the retracted one skipped")
    guard case .element(5) = q.nextBatch(deadline: 0, max: 10, into: &taken) else { Issue.record("rest"); return }
    #expect(taken == [1, 3, 4, 5], "no waiting for more than is queued")
    guard case .timedOut = q.nextBatch(deadline: 0, max: 10, into: &taken) else { Issue.record("empty"); return }
    q.push(6)
    q.shutdown()
    guard case .element(6) = q.nextBatch(deadline: Int64.max, max: 10, into: &taken) else { Issue.record("after shutdown"); return }
    guard case .shutDown = q.nextBatch(deadline: Int64.max, max: 10, into: &taken) else { Issue.record("shut down"); return }
  }
}
