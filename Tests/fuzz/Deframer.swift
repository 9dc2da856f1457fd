// Fuzz target: the gRPC message deframer, fed the input in chunks whose sizes the input's
// first byte chooses. Every byte must be accounted for: each message returned is its declared
// length, the bytes left buffered are what no complete message covers, and an error is one the
// input really contains (a flag above 1, a compressed flag without encoding, a length above
// the limit).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeframer(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  guard size > 0 else { return 0 }
  let bytes = UnsafeBufferPointer(start: data, count: size)
  let chunk = Int(bytes[0] % 32) + 1
  let input = Array(bytes.dropFirst())
  var deframer = MessageDeframer(maxMessageSize: 1024)
  var consumed = 0
  var offset = 0
  while offset < input.count {
    let end = min(input.count, offset + chunk)
    input[offset..<end].withUnsafeBytes { deframer.append($0) }
    offset = end
    while true {
      let message: [UInt8]?
      do {
        message = try deframer.next()
      } catch {
        // The failure must be real: check the header at `consumed`.
        let flag = input[consumed]
        let length = Int(input[consumed + 1]) << 24 | Int(input[consumed + 2]) << 16
          | Int(input[consumed + 3]) << 8 | Int(input[consumed + 4])
        switch error {
        case .invalidFlag(let f): precondition(f == flag && f > 1)
        case .compressedWithoutEncoding: precondition(flag == 1)
        case .tooLarge(let l, _): precondition(l == length && l > 1024 && flag == 0)
        }
        return 0
      }
      guard let message else { break }
      precondition(Array(input[(consumed + 5)..<(consumed + 5 + message.count)]) == message)
      consumed += 5 + message.count
    }
    precondition(deframer.bufferedBytes == offset - consumed, "bytes lost or invented")
  }
  return 0
}
