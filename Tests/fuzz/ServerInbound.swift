// Fuzz target: bytes from a client, fed to a server connection after the HTTP/2 client magic.
// The server has one method of each kind, answered by a host that echoes (inline, through the
// real host boundary: the registry, the loop's queue). The loop is driven by hand on this
// thread over an in-memory transport. Besides not crashing (under AddressSanitizer), every
// input must leave nothing behind: no call registered, no timer pending, no connection open.
// Built by Tests/fuzz/build.sh with `swiftc -sanitize=fuzzer,address` together with the core's
// sources.
import CLinux
import Glibc

final class EchoHost: EventSink, @unchecked Sendable {
  // @unchecked: one thread (the fuzzer's) does everything.
  var server: Server!

  func deliver(_ e: CallEvent) -> Bool {
    let ok = Status(.ok)
    switch (e.type, e.kind) {
    case (.call, .unary):
      _ = server.answer(token: e.token, .complete(message: e.message, status: ok, trailers: []))
    case (.call, .serverStreaming):
      _ = server.answer(token: e.token, .initialMetadata([MetadataEntry("x-fuzz", "1")]))
      _ = server.answer(token: e.token, .send(e.message ?? []))
    case (.call, _), (.message, .clientStreaming), (.sendDone, .bidiStreaming):
      _ = server.answer(token: e.token, .read)
    case (.message, _):
      _ = server.answer(token: e.token, .send(e.message ?? []))
    case (.sendDone, _), (.halfClose, _):
      _ = server.answer(token: e.token, .complete(message: nil, status: Status(.aborted, "done é"),
                                                   trailers: [MetadataEntry(key: "x-t-bin", value: [0, 255])]))
    default:
      break
    }
    return true
  }
}

struct Harness {
  let loop: EventLoop
  let group: EventLoopGroup
  let server: Server

  static let shared = Harness()

  init() {
    loop = try! EventLoop(index: 0)
    loop.bindToCurrentThread()
    group = EventLoopGroup(unstarted: [loop])
    server = Server(group: group)
    let host = EchoHost()
    host.server = server
    try! server.configure { c in
      c.maxReceiveMessageSize = 64 * 1024
      c.maxMetadataSize = 4096
      c.maxConcurrentStreams = 8
    }
    for (name, kind) in [("U", MethodKind.unary), ("S", .serverStreaming), ("C", .clientStreaming),
                         ("B", .bidiStreaming)] {
      try! server.register(MethodRegistration(path: "/f.F/\(name)", kind: kind, sink: host))
    }
    try! server.start()
  }

  func run(_ input: UnsafeRawBufferPointer) {
    _ = server.connectionOpened()
    let t = MemoryTransport()
    t.feed("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    t.feed(input)
    t.endOfInput = true
    guard let c = ServerConnection.adopt(transport: t, peer: "fuzz", server: server, loop: loop)
    else { return }
    var rounds = 0
    while !c.closed && rounds < 256 {
      c.handleEvents(EPOLLIN.rawValue)
      loop.runOnce()
      rounds += 1
    }
    if !c.closed { c.forceShutdown(Status(.unavailable, "fuzz input over")) }
    loop.runOnce()
    precondition(c.closed, "the connection is still open")
    precondition(loop.registry.count == 0, "\(loop.registry.count) calls left registered")
    precondition(loop.pendingTimers == 0, "\(loop.pendingTimers) timers left pending")
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerInbound(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  Harness.shared.run(UnsafeRawBufferPointer(start: data, count: size))
  return 0
}
