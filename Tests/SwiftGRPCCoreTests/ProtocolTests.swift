import Testing

@testable import SwiftGRPCCore

@Suite struct Base64Tests {
  @Test func roundTripsEveryLength() {
    for n in 0..<70 {
      let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
      let encoded = Base64.encode(bytes)
      #expect(!encoded.contains(UInt8(ascii: "=")), "emits unpadded")
      #expect(Base64.decode(encoded) == bytes)
    }
  }

  @Test func acceptsPaddedAndUnpadded() {
    #expect(Base64.decode(Array("aGk=".utf8)) == Array("hi".utf8))
    #expect(Base64.decode(Array("aGk".utf8)) == Array("hi".utf8))
    #expect(Base64.decode(Array("aA==".utf8)) == Array("h".utf8))
    #expect(Base64.decode(Array("aA".utf8)) == Array("h".utf8))
    #expect(Base64.decode(Array("".utf8)) == [])
  }

  @Test func rejectsMalformed() {
    #expect(Base64.decode(Array("a".utf8)) == nil)
    #expect(Base64.decode(Array("a!bc".utf8)) == nil)
    #expect(Base64.decode(Array("aGk==".utf8)) == nil)
    #expect(Base64.decode(Array("a===".utf8)) == nil)
  }
}

@Suite struct PercentEncodingTests {
  @Test func encodesPerSpec() {
    #expect(String(decoding: PercentEncoding.encode("a b%c"), as: UTF8.self) == "a b%25c")
    #expect(String(decoding: PercentEncoding.encode("\t\r\n"), as: UTF8.self) == "%09%0D%0A")
    #expect(String(decoding: PercentEncoding.encode("é"), as: UTF8.self) == "%C3%A9")
    #expect(String(decoding: PercentEncoding.encode(" a b "), as: UTF8.self) == "%20a b%20")
  }

  @Test func roundTrips() {
    for s in ["", "plain", "héllo\twörld\r\n✓ 100%", "%%%", "~ \u{7f}"] {
      #expect(PercentEncoding.decode(PercentEncoding.encode(s)) == s)
    }
  }

  @Test func decodesLeniently() {
    #expect(PercentEncoding.decode(Array("100%".utf8)) == "100%")
    #expect(PercentEncoding.decode(Array("%zz%4".utf8)) == "%zz%4")
    #expect(PercentEncoding.decode(Array("%41%62".utf8)) == "Ab")
  }
}

@Suite struct GRPCTimeoutTests {
  @Test func parsesEveryUnit() {
    #expect(GRPCTimeout.parse(Array("1H".utf8)) == 3_600_000_000_000)
    #expect(GRPCTimeout.parse(Array("2M".utf8)) == 120_000_000_000)
    #expect(GRPCTimeout.parse(Array("3S".utf8)) == 3_000_000_000)
    #expect(GRPCTimeout.parse(Array("100m".utf8)) == 100_000_000)
    #expect(GRPCTimeout.parse(Array("5u".utf8)) == 5_000)
    #expect(GRPCTimeout.parse(Array("99999999n".utf8)) == 99_999_999)
  }

  @Test func rejectsMalformed() {
    for bad in ["", "m", "10", "10x", "-1S", "123456789S", "1.5S", " 1S"] {
      #expect(GRPCTimeout.parse(Array(bad.utf8)) == nil, "\(bad)")
    }
  }

  @Test func encodesWithinEightDigits() {
    #expect(GRPCTimeout.encode(nanoseconds: 100_000_000) == "100000u")
    #expect(GRPCTimeout.parse(Array(GRPCTimeout.encode(nanoseconds: 1).utf8)) == 1)
    let long = GRPCTimeout.encode(nanoseconds: 86_400_000_000_000)
    #expect(long.count <= 9)
    #expect(GRPCTimeout.parse(Array(long.utf8))! >= 86_400_000_000_000)
  }
}

@Suite struct MessageDeframerTests {
  func framed(_ messages: [[UInt8]]) -> [UInt8] {
    var out = [UInt8]()
    for m in messages { m.withUnsafeBytes { MessageFramer.appendFramed($0, to: &out) } }
    return out
  }

  @Test func reassemblesAcrossAnySplit() throws {
    let messages: [[UInt8]] = [[], [1], Array(repeating: 7, count: 300), [9, 9, 9]]
    let wire = framed(messages)
    for chunk in 1...wire.count {
      var d = MessageDeframer(maxMessageSize: 1 << 20)
      var got = [[UInt8]]()
      var i = 0
      while i < wire.count {
        d.append(Array(wire[i..<min(i + chunk, wire.count)]))
        i += chunk
        while let m = try d.next() { got.append(m) }
      }
      #expect(got == messages, "chunk size \(chunk)")
      #expect(d.bufferedBytes == 0)
    }
  }

  @Test func enforcesLimitBeforePayloadArrives() {
    var d = MessageDeframer(maxMessageSize: 10)
    d.append([0, 0, 0, 0, 11])
    #expect(throws: MessageDeframer.Failure.tooLarge(length: 11, limit: 10)) { try d.next() }
  }

  @Test func rejectsCompressedFlagWithoutEncoding() {
    var d = MessageDeframer(maxMessageSize: 10)
    d.append([1, 0, 0, 0, 1, 42])
    #expect(throws: MessageDeframer.Failure.compressedWithoutEncoding) { try d.next() }
  }

  @Test func rejectsUnknownFlag() {
    var d = MessageDeframer(maxMessageSize: 10)
    d.append([2, 0, 0, 0, 0])
    #expect(throws: MessageDeframer.Failure.invalidFlag(2)) { try d.next() }
  }

  @Test func waitsForTruncatedMessage() throws {
    var d = MessageDeframer(maxMessageSize: 100)
    d.append([0, 0, 0, 0, 5, 1, 2])
    #expect(try d.next() == nil)
    #expect(d.bufferedBytes == 7)
  }
}

@Suite struct MetadataTests {
  @Test func validKeys() {
    for k in ["a", "x-user-id", "trace.id_2", "data-bin"] {
      #expect(MetadataValidation.validate(key: Array(k.utf8)) == nil, "\(k)")
    }
  }

  @Test func illegalAndReservedKeys() {
    #expect(MetadataValidation.validate(key: [UInt8]()) == .emptyKey)
    #expect(MetadataValidation.validate(key: Array("Upper".utf8)) == .illegalKeyByte(key: "Upper", byte: 0x55))
    #expect(MetadataValidation.validate(key: Array("a b".utf8)) == .illegalKeyByte(key: "a b", byte: 0x20))
    for k in ["grpc-status", "grpc-anything", ":path", "content-type", "te", "connection"] {
      #expect(MetadataValidation.validate(key: Array(k.utf8)) == .reservedKey(k), "\(k)")
    }
  }

  @Test func values() {
    #expect(MetadataValidation.validate(value: Array(" ok ~".utf8), key: "k") == nil)
    #expect(MetadataValidation.validate(value: [0x0A], key: "k") == .illegalValueByte(key: "k", byte: 0x0A))
    #expect(MetadataValidation.validate(value: [0xC3, 0xA9], key: "k") == .illegalValueByte(key: "k", byte: 0xC3))
  }

  @Test func binaryKeys() {
    #expect(MetadataValidation.isBinaryKey(Array("x-bin".utf8)))
    #expect(!MetadataValidation.isBinaryKey(Array("-bin".utf8)))
    #expect(!MetadataValidation.isBinaryKey(Array("x-bin-not".utf8)))
  }
}

@Suite struct ListenAddressTests {
  @Test func parses() {
    #expect(ListenAddress.parse("127.0.0.1:50051") == .inet(host: "127.0.0.1", port: 50051))
    #expect(ListenAddress.parse(":0") == .inet(host: "0.0.0.0", port: 0))
    #expect(ListenAddress.parse("[::1]:8080") == .inet(host: "::1", port: 8080))
    #expect(ListenAddress.parse("localhost:1") == .inet(host: "localhost", port: 1))
    #expect(ListenAddress.parse("unix:/tmp/s.sock") == .unix(path: "/tmp/s.sock"))
    #expect(ListenAddress.parse("unix-abstract:name") == .unixAbstract(name: "name"))
  }

  @Test func rejects() {
    for bad in ["", "host", "1.2.3.4:", "1.2.3.4:70000", "::1:80", "[::1]80", "unix:", "h:-1"] {
      #expect(ListenAddress.parse(bad) == nil, "\(bad)")
    }
  }
}
