/// Reassembles gRPC length-prefixed messages (1-byte compressed flag, 4-byte big-endian length,
/// payload) from DATA chunks split at any boundary.
public struct MessageDeframer: Sendable {
  public enum Failure: Error, Equatable, Sendable {
    /// A message's declared length is above the limit.
    case tooLarge(length: Int, limit: Int)
    /// The compressed flag is set but the call has no known message encoding.
    case compressedWithoutEncoding
    /// The flag byte is neither 0 nor 1.
    case invalidFlag(UInt8)
  }

  private var buffer: [UInt8] = []
  private var readIndex = 0
  public let maxMessageSize: Int

  public init(maxMessageSize: Int) {
    self.maxMessageSize = maxMessageSize
  }

  /// Bytes received but not yet returned as a message.
  public var bufferedBytes: Int { buffer.count - readIndex }

  /// Appends a chunk of DATA.
  public mutating func append(_ chunk: UnsafeRawBufferPointer) {
    if readIndex > 0 && readIndex == buffer.count {
      buffer.removeAll(keepingCapacity: true)
      readIndex = 0
    }
    buffer.append(contentsOf: chunk)
  }

  public mutating func append(_ chunk: [UInt8]) {
    chunk.withUnsafeBytes { append($0) }
  }

  /// Returns the next complete message, nil if more bytes are needed, or throws if the stream
  /// is malformed. The length limit is checked as soon as the prefix is in, before the payload.
  public mutating func next() throws(Failure) -> [UInt8]? {
    let available = buffer.count - readIndex
    guard available >= 5 else { return nil }
    let flag = buffer[readIndex]
    guard flag <= 1 else { throw .invalidFlag(flag) }
    if flag == 1 { throw .compressedWithoutEncoding }
    let length =
      Int(buffer[readIndex + 1]) << 24 | Int(buffer[readIndex + 2]) << 16
      | Int(buffer[readIndex + 3]) << 8 | Int(buffer[readIndex + 4])
    guard length <= maxMessageSize else { throw .tooLarge(length: length, limit: maxMessageSize) }
    guard available - 5 >= length else { return nil }
    let start = readIndex + 5
    let message = Array(buffer[start..<start + length])
    readIndex = start + length
    if readIndex == buffer.count {
      buffer.removeAll(keepingCapacity: buffer.capacity <= 65536)
      readIndex = 0
    } else if readIndex > 65536 && readIndex * 2 > buffer.count {
      buffer.removeFirst(readIndex)
      readIndex = 0
    }
    return message
  }
}

/// Frames a message: flag 0 (uncompressed) and a 4-byte big-endian length.
public enum MessageFramer {
  public static func appendFramed(_ message: UnsafeRawBufferPointer, to out: inout [UInt8]) {
    let n = UInt32(truncatingIfNeeded: message.count)
    out.append(0)
    out.append(UInt8(truncatingIfNeeded: n >> 24))
    out.append(UInt8(truncatingIfNeeded: n >> 16))
    out.append(UInt8(truncatingIfNeeded: n >> 8))
    out.append(UInt8(truncatingIfNeeded: n))
    out.append(contentsOf: message)
  }
}

extension MessageDeframer.Failure {
  /// The status a call ends with when its peer's message stream is malformed or too large.
  public var status: Status {
    switch self {
    case .tooLarge(let length, let limit):
      return Status(.resourceExhausted, "received message larger than max (\(length) vs. \(limit))")
    case .compressedWithoutEncoding:
      return Status(.internalError, "compressed flag set on a message without grpc-encoding")
    case .invalidFlag(let flag):
      return Status(.internalError, "invalid message flag \(flag)")
    }
  }
}
