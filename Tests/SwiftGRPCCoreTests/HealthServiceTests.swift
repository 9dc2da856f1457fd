import Testing

@testable import SwiftGRPCCore

@Suite struct HealthServiceTests {
  @Test func readsTheServiceOfARequest() {
    #expect(HealthService.service(in: []) == "")
    #expect(HealthService.service(in: [0x0a, 0x03] + Array("abc".utf8)) == "abc")
    // Unknown fields of every wire type are skipped; the last service field wins (proto3).
    let mixed: [UInt8] = [0x10, 0x96, 0x01, 0x19] + [UInt8](repeating: 0, count: 8)
      + [0x25, 0, 0, 0, 0, 0x0a, 0x01, 0x61, 0x0a, 0x01, 0x62]
    #expect(HealthService.service(in: mixed) == "b")
  }

  @Test func refusesMalformedRequests() {
    #expect(HealthService.service(in: [0x0a, 0x05, 0x61]) == nil, "truncated")
    #expect(HealthService.service(in: [0x0a]) == nil, "no length")
    #expect(HealthService.service(in: [0x0a, 0x02, 0xc3, 0x28]) == nil, "not UTF-8")
    #expect(HealthService.service(in: [0x0b]) == nil, "wire type 3")
    #expect(HealthService.service(in: [0x19, 0, 0]) == nil, "fixed64 cut short")
    #expect(HealthService.service(in: [0x10, 0xff, 0xff]) == nil, "varint cut short")
    let huge: [UInt8] = [0x0a] + [UInt8](repeating: 0xff, count: 9) + [0x01]
    #expect(HealthService.service(in: huge) == nil, "a length beyond the message")
  }

  @Test func encodesResponsesAsProto3() {
    #expect(HealthService.response(.serving) == [0x08, 0x01])
    #expect(HealthService.response(.notServing) == [0x08, 0x02])
    #expect(HealthService.response(.serviceUnknown) == [0x08, 0x03])
    #expect(HealthService.response(.unknown) == [], "the default value is not written")
  }
}
