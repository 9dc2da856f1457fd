import Glibc
import Testing

@testable import SwiftGRPCCore

@Suite struct ClientTargetTests {
  @Test func parsesEveryForm() throws {
    #expect(try ClientTarget.parse("localhost:50051").get() == .dns(host: "localhost", port: 50051))
    #expect(try ClientTarget.parse("dns:///example.com:1").get() == .dns(host: "example.com", port: 1))
    #expect(try ClientTarget.parse("dns://8.8.8.8/example.com:2").get() == .dns(host: "example.com", port: 2))
    #expect(try ClientTarget.parse("example.com").get() == .dns(host: "example.com", port: 443))
    #expect(try ClientTarget.parse("[::1]:7").get() == .dns(host: "::1", port: 7))
    #expect(
      try ClientTarget.parse("ipv4:1.2.3.4:5,127.0.0.1:6").get()
        == .literals(["1.2.3.4:5", "127.0.0.1:6"]))
    #expect(try ClientTarget.parse("ipv6:[::1]:5").get() == .literals(["[::1]:5"]))
    #expect(try ClientTarget.parse("unix:/tmp/s").get() == .unix(path: "/tmp/s"))
    #expect(try ClientTarget.parse("unix:///tmp/s").get() == .unix(path: "/tmp/s"))
    #expect(try ClientTarget.parse("unix-abstract:name").get() == .unixAbstract(name: "name"))
  }

  @Test func rejectsMalformedTargets() {
    for bad in [
      "", "host:99999", "host:", "host:1x", "ipv4:name:1", "ipv4:1.2.3.4", "ipv6:::1:5", "unix:",
      "http://host:1", "dns://authority-only", "::1:80",
    ] {
      if case .success(let t) = ClientTarget.parse(bad) { Issue.record("'\(bad)' parsed as \(t)") }
    }
  }

  @Test func authorities() throws {
    #expect(try ClientTarget.parse("dns:///h:1").get().authority == "h:1")
    #expect(try ClientTarget.parse("[::1]:9").get().authority == "[::1]:9")
    #expect(try ClientTarget.parse("unix:/x").get().authority == "localhost")
  }

  @Test func resolvesLiteralsWithoutDNS() throws {
    let addresses = try ClientTarget.parse("ipv4:127.0.0.1:5,127.0.0.2:6").get().resolve().get()
    #expect(addresses.map(\.description) == ["ipv4:127.0.0.1:5", "ipv4:127.0.0.2:6"])
  }
}

@Suite struct BackoffTests {
  @Test func growsByTheMultiplierWithinJitterUpToTheMaximum() {
    var config = Channel.Config()
    config.initialBackoffNanos = 1_000_000_000
    config.maxBackoffNanos = 5_000_000_000
    var b = Backoff(config)
    var base = 1_000_000_000.0
    for _ in 0..<8 {
      let d = Double(b.next())
      #expect(d >= base * 0.8 - 1 && d <= base * 1.2 + 1)
      base = min(base * 1.6, 5_000_000_000)
    }
    b.reset()
    #expect(Double(b.next()) <= 1_200_000_000)
  }
}

/// Collects a client call's events for a test.
final class CollectingSink: EventSink, @unchecked Sendable {
  // @unchecked: `events` is locked.
  let events = EventQueue<CallEvent>()
  func deliver(_ event: CallEvent) -> Bool { events.push(event) }

  func next() -> CallEvent? {
    if case .element(let e) = events.next(deadline: monotonicNanos() + 10_000_000_000) { return e }
    return nil
  }
}

/// A server host answering every unary call inline with its request, and "/t/Status" with the
/// status code given in the request's first byte.
final class InlineEchoHost: EventSink, @unchecked Sendable {
  // @unchecked: `server` is set once before the server starts.
  var server: Server?
  func deliver(_ event: CallEvent) -> Bool {
    guard event.type == .call, let server else { return true }
    if event.method == "/t/Status" {
      let code = StatusCode(rawValue: Int32(event.message?.first ?? 2)) ?? .unknown
      _ = server.answer(
        token: event.token,
        .complete(message: nil, status: Status(code, "status \(code.rawValue)"), trailers: []))
    } else {
      _ = server.answer(
        token: event.token,
        .complete(
          message: event.message, status: Status(.ok),
          trailers: [MetadataEntry("x-method", event.method)]))
    }
    return true
  }
}

@Suite struct ChannelTests {
  @Test func unaryCallsAgainstOurServerInProcess() throws {
    let group = try EventLoopGroup(threads: 2)
    defer { group.shutdown() }
    let host = InlineEchoHost()
    let server = Server(group: group)
    host.server = server
    try server.register(MethodRegistration(path: "/t/Echo", kind: .unary, sink: host))
    try server.register(MethodRegistration(path: "/t/Status", kind: .unary, sink: host))
    let port = try server.listen("127.0.0.1:0")
    try server.start()
    defer { server.shutdown(graceNanos: 0) }

    let channel = try Channel(target: "127.0.0.1:\(port)", group: group, config: .init())
    defer { channel.destroy() }
    #expect(channel.state == .idle)
    let sink = CollectingSink()
    let id = try channel.startCall(
      CallStart(method: "/t/Echo", kind: .unary, message: Array("hi".utf8), sink: sink, tag: 7))
    let status = try #require(sink.next())
    #expect(status.type == .clientStatus && status.token == id && status.tag == 7)
    #expect(status.status == Status(.ok))
    #expect(status.message == Array("hi".utf8))
    #expect(status.trailers == [MetadataEntry("x-method", "/t/Echo")])
    #expect(channel.state == .ready)
    #expect(channel.submit(call: id, .cancel) == .ended)

    _ = try channel.startCall(
      CallStart(method: "/t/Status", kind: .unary, message: [5], sink: sink))
    let failed = try #require(sink.next())
    #expect(failed.status == Status(.notFound, "status 5"))
    #expect(failed.message == nil)

    channel.close()
    #expect(throws: Channel.ChannelError.closed("the channel is closed")) {
      _ = try channel.startCall(CallStart(method: "/t/Echo", kind: .unary, message: [], sink: sink))
    }
    #expect(channel.waitForStateChange(from: .ready, deadline: monotonicNanos() + 5_000_000_000) == .shutdown)
  }

  @Test func refusedConnectionFailsFastAndWaitForReadyWaits() throws {
    let group = try EventLoopGroup(threads: 1)
    defer { group.shutdown() }
    // A port that was free a moment ago: nothing listens there.
    let probe = Server(group: group)
    let port = try probe.listen("127.0.0.1:0")
    probe.shutdown(graceNanos: 0)

    var config = Channel.Config()
    config.initialBackoffNanos = 50_000_000
    let channel = try Channel(target: "ipv4:127.0.0.1:\(port)", group: group, config: config)
    defer { channel.destroy() }
    let sink = CollectingSink()
    _ = try channel.startCall(CallStart(method: "/t/Echo", kind: .unary, message: [], sink: sink))
    let status = try #require(sink.next())
    #expect(status.status.code == .unavailable)
    #expect(status.status.message.contains("Connection refused"))

    // Wait-for-ready: pending until the deadline, which ends it with DEADLINE_EXCEEDED.
    _ = try channel.startCall(
      CallStart(
        method: "/t/Echo", kind: .unary, message: [], deadline: monotonicNanos() + 300_000_000,
        waitForReady: true, sink: sink))
    let waited = try #require(sink.next())
    #expect(waited.status.code == .deadlineExceeded)
  }

  @Test func destroyEndsCallsInFlightWithCancelled() throws {
    let group = try EventLoopGroup(threads: 1)
    defer { group.shutdown() }
    let channel = try Channel(target: "ipv4:127.0.0.1:1", group: group, config: .init())
    let sink = CollectingSink()
    let id = try channel.startCall(
      CallStart(method: "/t/Echo", kind: .clientStreaming, waitForReady: true, sink: sink))
    #expect(channel.submit(call: id, .read) == .wrongState("a client-streaming call gets its response with the STATUS event"))
    #expect(channel.submit(call: id, .send([1])) == nil)
    channel.destroy()
    let sendDone = try #require(sink.next())
    #expect(sendDone.type == .clientSendDone && sendDone.status.code == .cancelled)
    let status = try #require(sink.next())
    #expect(status.type == .clientStatus && status.status.code == .cancelled)
    #expect(channel.state == .shutdown)
    #expect(channel.submit(call: id, .cancel) == .ended)
  }
}
