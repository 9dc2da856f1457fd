import Testing

@testable import SwiftGRPCCore

@Suite struct CompressionTests {
  let codec = ZlibCodec()

  func inflate(_ bytes: [UInt8], _ e: MessageEncoding, limit: Int = 1 << 20) -> Result<[UInt8], InflateError> {
    bytes.withUnsafeBytes { codec.decompress($0, e, limit: limit) }
  }

  func deflate(_ bytes: [UInt8], _ e: MessageEncoding) -> [UInt8]? {
    bytes.withUnsafeBytes { codec.compress($0, e) }
  }

  @Test func decodesWhatPythonsZlibWrote() {
    // gzip.compress(b"hello, gzip", mtime=0) and zlib.compress(b"hello, deflate")
    let gz: [UInt8] = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 215, 81, 72, 175,
                       202, 44, 0, 0, 74, 155, 177, 92, 11, 0, 0, 0]
    let zl: [UInt8] = [120, 156, 203, 72, 205, 201, 201, 215, 81, 72, 73, 77, 203, 73, 44, 73, 5,
                       0, 38, 173, 5, 54]
    #expect(inflate(gz, .gzip) == .success(Array("hello, gzip".utf8)))
    #expect(inflate(zl, .deflate) == .success(Array("hello, deflate".utf8)))
    // Each is not the other's format.
    guard case .failure(.corrupt) = inflate(gz, .deflate) else { Issue.record("gzip read as deflate"); return }
    guard case .failure(.corrupt) = inflate(zl, .gzip) else { Issue.record("deflate read as gzip"); return }
  }

  @Test(arguments: [MessageEncoding.gzip, .deflate])
  func roundTripsEverySize(_ e: MessageEncoding) throws {
    for size in [0, 1, 100, 4095, 4096, 70_000, 1 << 20] {
      let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
      let packed = try #require(deflate(data, e))
      #expect(inflate(packed, e, limit: size) == .success(data), "size \(size)")
    }
    // The streams are reused: a second message after a failure decodes as well.
    #expect(inflate([1, 2, 3], e).isFailure)
    let again = try #require(deflate(Array("again".utf8), e))
    #expect(inflate(again, e) == .success(Array("again".utf8)))
  }

  @Test(arguments: [MessageEncoding.gzip, .deflate])
  func aBombStopsAtTheLimit(_ e: MessageEncoding) throws {
    let bomb = try #require(deflate([UInt8](repeating: 0, count: 64 << 20), e))
    #expect(bomb.count < 128 << 10)  // 64 MiB of zeros in well under 128 KiB
    #expect(inflate(bomb, e, limit: 1 << 20) == .failure(.tooLarge(limit: 1 << 20)))
    // Exactly at the limit is allowed.
    let exact = try #require(deflate([UInt8](repeating: 7, count: 5000), e))
    #expect(inflate(exact, e, limit: 5000).isSuccess)
    #expect(inflate(exact, e, limit: 4999) == .failure(.tooLarge(limit: 4999)))
  }

  @Test(arguments: [MessageEncoding.gzip, .deflate])
  func corruptTruncatedAndTrailingDataAreRefused(_ e: MessageEncoding) throws {
    let good = try #require(deflate(Array("some message bytes, repeated, repeated".utf8), e))
    var flipped = good
    flipped[flipped.count / 2] ^= 0xFF
    flipped[flipped.count - 1] ^= 0xFF  // and the checksum
    #expect(inflate(flipped, e).isFailure)
    #expect(inflate(Array(good.dropLast(3)), e) == .failure(.corrupt("\(e.rawValue) data is truncated")))
    #expect(inflate(good + [0], e) == .failure(.corrupt("\(e.rawValue) data continues after its end")))
    #expect(inflate([], e) == .failure(.corrupt("\(e.rawValue) data is truncated")))
  }

  @Test func encodingNames() {
    #expect(MessageEncoding(wire: Array("gzip".utf8)) == .gzip)
    #expect(MessageEncoding(wire: Array("deflate".utf8)) == .deflate)
    #expect(MessageEncoding(wire: Array("identity".utf8)) == .identity)
    #expect(MessageEncoding(wire: Array("snappy".utf8)) == nil)
    #expect(MessageEncoding(wire: Array("GZIP".utf8)) == nil)
    #expect(MessageEncoding.parse(Array("deflate".utf8)) == (.deflate, nil))
    #expect(MessageEncoding.parse(Array("br".utf8)) == (.identity, "br"))
  }

  @Test func acceptEncodingLists() {
    let grpcio = AcceptedEncodings(header: Array("identity, deflate, gzip".utf8))
    #expect(grpcio == .all)
    let gzipOnly = AcceptedEncodings(header: Array("gzip".utf8))
    #expect(gzipOnly.accepts(.gzip) && gzipOnly.accepts(.identity) && !gzipOnly.accepts(.deflate))
    // Unknown names, empty items, tabs and case: only exact names we support count.
    let odd = AcceptedEncodings(header: Array("snappy,,\tdeflate\t, GZIP ,br".utf8))
    #expect(odd.accepts(.deflate) && !odd.accepts(.gzip))
    #expect(AcceptedEncodings(header: []) == .identityOnly)
    #expect(odd.choose(.gzip) == .identity && odd.choose(.deflate) == .deflate)
    #expect(AcceptedEncodings.identityOnly.choose(.gzip) == .identity)
  }

  @Test func algorithmNumbersAreCCores() {
    #expect(MessageEncoding(algorithm: 0) == .identity)
    #expect(MessageEncoding(algorithm: 1) == .deflate)
    #expect(MessageEncoding(algorithm: 2) == .gzip)
    #expect(MessageEncoding(algorithm: 3) == nil && MessageEncoding(algorithm: -1) == nil)
  }

  @Test func outboundMessagesCarryTheirFlag() throws {
    var b = MessageBuffer(maxReceiveMessageSize: 1 << 20)
    let plain: [UInt8] = Array(repeating: 7, count: 1000)
    let packed = try #require(deflate(plain, .gzip))
    b.enqueue(packed, compressed: true, completesSend: true)
    b.enqueue([1, 2], completesSend: true)
    var wire = [UInt8](repeating: 0, count: 5 + packed.count + 7)
    // Pulled in small pieces, as nghttp2 may: prefixes are split across reads.
    var n = 0
    var done = 0
    while n < wire.count {
      let length = Swift.min(3, wire.count - n)
      let r = wire.withUnsafeMutableBytes { b.read(into: $0.baseAddress! + n, length: length) }
      n += r.count
      done += r.sendsDone
    }
    #expect(done == 2 && !b.hasOutbound)
    #expect(wire[0] == 1 && Array(wire[1..<5]) == [0, 0, 0, UInt8(packed.count)])
    #expect(Array(wire[5..<(5 + packed.count)]) == packed)
    #expect(Array(wire[(5 + packed.count)...]) == [0, 0, 0, 0, 2, 1, 2])
    // What went out reads back through the deframer: inflated, flagged compressed.
    var d = MessageDeframer(maxMessageSize: 1 << 20)
    d.encoding = .gzip
    wire.withUnsafeBytes { d.append($0) }
    #expect(try d.next(inflatingWith: codec) == plain && d.lastWasCompressed)
    #expect(try d.next(inflatingWith: codec) == [1, 2] && !d.lastWasCompressed)
  }

  @Test func setCompressionIsRefusedOnceHeadersAreAsked() throws {
    var m = CallStateMachine(role: .server, kind: .serverStreaming)
    try m.host(.setCompression(.gzip))
    try m.host(.send([1], compress: false))
    #expect(throws: CallStateMachine.Refusal.wrongState("compression must be chosen before the response headers are sent")) {
      try m.host(.setCompression(.deflate))
    }
    var client = CallStateMachine(role: .client, kind: .unary)
    #expect(throws: CallStateMachine.Refusal.self) { try client.host(.setCompression(.gzip)) }
  }
}

extension Result {
  var isSuccess: Bool { if case .success = self { true } else { false } }
  var isFailure: Bool { !isSuccess }
}
