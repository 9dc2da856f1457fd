// Fuzz target: the gRPC message deframer, fed the input in chunks whose sizes the input's
// first byte chooses (its low 5 bits); its top bit makes the call's encoding gzip, so that
// messages with the compressed flag are inflated. Every byte must be accounted for: each
// message returned is its declared length (an uncompressed one, the very bytes; an inflated
// one, no more than the limit), the bytes left buffered are what no complete message covers,
// and an error is one the input really contains (a flag above 1, a compressed flag without
// encoding, a length above the limit, data that does not inflate within the limit).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeframer(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  guard size > 0 else { return 0 }
  let bytes = UnsafeBufferPointer(start: data, count: size)
  let chunk = Int(bytes[0] & 31) + 1
  let gzip = bytes[0] & 0x80 != 0
  let input = Array(bytes.dropFirst())
  var deframer = MessageDeframer(maxMessageSize: 1024)
  let codec = ZlibCodec()
  if gzip { deframer.encoding = .gzip }
  var consumed = 0
  var offset = 0
  while offset < input.count {
    let end = min(input.count, offset + chunk)
    input[offset..<end].withUnsafeBytes { deframer.append($0) }
    offset = end
    while true {
      let message: [UInt8]?
      do {
        message = try deframer.next(inflatingWith: codec)
      } catch {
        // The failure must be real: check the header at `consumed`.
        let flag = input[consumed]
        let length = Int(input[consumed + 1]) << 24 | Int(input[consumed + 2]) << 16
          | Int(input[consumed + 3]) << 8 | Int(input[consumed + 4])
        switch error {
        case .invalidFlag(let f): precondition(f == flag && f > 1)
        case .compressedWithoutEncoding: precondition(flag == 1 && !gzip)
        case .tooLarge(let l, _): precondition(l == length && l > 1024 && flag <= 1)
        case .inflatedTooLarge, .corruptCompressed: precondition(flag == 1 && gzip && length <= 1024)
        }
        return 0
      }
      guard let message else { break }
      let flag = input[consumed]
      let length = Int(input[consumed + 1]) << 24 | Int(input[consumed + 2]) << 16
        | Int(input[consumed + 3]) << 8 | Int(input[consumed + 4])
      if flag == 0 {
        precondition(Array(input[(consumed + 5)..<(consumed + 5 + length)]) == message)
      } else {
        precondition(gzip && flag == 1 && message.count <= 1024)
      }
      consumed += 5 + length
    }
    precondition(deframer.bufferedBytes == offset - consumed, "bytes lost or invented")
  }
  return 0
}
