/// Reassembles gRPC length-prefixed messages (1-byte compressed flag, 4-byte big-endian length,
/// payload) from DATA chunks split at any boundary, and inflates the compressed ones.
public struct MessageDeframer: Sendable {
  public enum Failure: Error, Equatable, Sendable {
    /// A message's declared length is above the limit.
    case tooLarge(length: Int, limit: Int)
    /// The compressed flag is set but the call has no known message encoding.
    case compressedWithoutEncoding
    /// The flag byte is neither 0 nor 1.
    case invalidFlag(UInt8)
    /// A compressed message inflates to more than the limit (inflation stopped there).
    case inflatedTooLarge(limit: Int)
    /// A compressed message is not valid data of the call's encoding.
    case corruptCompressed(String)
  }

  public let maxMessageSize: Int
  /// The call's message encoding (its `grpc-encoding`): what a message with the compressed
  /// flag is in. Identity: the flag is refused.
  public var encoding = MessageEncoding.identity
  /// Complete messages not yet returned, oldest first, with their compressed flag, and their
  /// framed size.
  private var ready: [(bytes: [UInt8], compressed: Bool)] = []
  private var readyHead = 0
  private var readyBytes = 0
  /// The prefix of the message being received, big-endian, and how many of its 5 bytes are in.
  private var prefix: UInt64 = 0
  private var prefixCount = 0
  /// The payload being received once its prefix is in: allocated once at its declared length
  /// (up to `reserveLimit`; beyond, it grows as bytes arrive) and handed out as it is (each byte
  /// is copied once, from the DATA chunk).
  private var payload: [UInt8] = []
  private var length = 0
  private var compressed = false
  /// What a prefix said was wrong; thrown once the messages before it are returned. Nothing
  /// after it is kept.
  private var failure: Failure?

  /// The most reserved for a message before its bytes arrive (the default receive limit).
  public static let reserveLimit = 4 * 1024 * 1024

  public init(maxMessageSize: Int) {
    self.maxMessageSize = maxMessageSize
  }

  /// Bytes received but not yet returned as a message.
  public var bufferedBytes: Int { readyBytes + prefixCount + payload.count }

  /// Appends a chunk of DATA.
  public mutating func append(_ chunk: UnsafeRawBufferPointer) {
    guard failure == nil, let base = chunk.baseAddress else { return }
    var i = 0
    while i < chunk.count {
      if prefixCount < 5 {
        while prefixCount < 5 && i < chunk.count {
          prefix = prefix << 8 | UInt64(base.load(fromByteOffset: i, as: UInt8.self))
          prefixCount += 1
          i += 1
        }
        guard prefixCount == 5 else { return }
        let flag = UInt8(truncatingIfNeeded: prefix >> 32)
        length = Int(prefix & 0xFFFF_FFFF)
        if flag > 1 {
          failure = .invalidFlag(flag)
        } else if flag == 1 && encoding == .identity {
          failure = .compressedWithoutEncoding
        } else if length > maxMessageSize {
          failure = .tooLarge(length: length, limit: maxMessageSize)
        }
        if failure != nil { return }
        compressed = flag == 1
        // A prefix costs the peer 5 bytes: what it declares is reserved only up to a bound, so
        // that streams declaring huge messages under a huge limit reserve no more than that.
        payload.reserveCapacity(Swift.min(length, MessageDeframer.reserveLimit))
      }
      let take = Swift.min(length - payload.count, chunk.count - i)
      payload.append(contentsOf: UnsafeRawBufferPointer(start: base + i, count: take))
      i += take
      if payload.count == length { messageComplete() }
    }
  }

  public mutating func append(_ chunk: [UInt8]) {
    chunk.withUnsafeBytes { append($0) }
  }

  private mutating func messageComplete() {
    guard prefixCount == 5 else { return }
    ready.append((payload, compressed))
    payload = []
    readyBytes += 5 + length
    prefix = 0
    prefixCount = 0
    length = 0
  }

  /// Returns the next complete message, nil if more bytes are needed, or throws if the stream
  /// is malformed. The length limit is checked as soon as the prefix is in, before the payload;
  /// a compressed message is inflated with `codec` (the loop's) up to the same limit.
  /// Whether the message `next` returned last came compressed (its flag was 1).
  public private(set) var lastWasCompressed = false

  public mutating func next(inflatingWith codec: ZlibCodec? = nil) throws(Failure) -> [UInt8]? {
    guard readyHead < ready.count else {
      if let failure { throw failure }
      return nil
    }
    let (message, isCompressed) = ready[readyHead]
    ready[readyHead] = ([], false)
    readyHead += 1
    readyBytes -= 5 + message.count
    if readyHead == ready.count {
      ready.removeAll(keepingCapacity: ready.capacity <= 64)
      readyHead = 0
    }
    lastWasCompressed = isCompressed
    guard isCompressed else { return message }
    guard let codec else { throw .compressedWithoutEncoding }
    let inflated = message.withUnsafeBytes { codec.decompress($0, encoding, limit: maxMessageSize) }
    switch inflated {
    case .success(let bytes): return bytes
    case .failure(.tooLarge(let limit)): throw fail(.inflatedTooLarge(limit: limit))
    case .failure(.corrupt(let why)): throw fail(.corruptCompressed(why))
    }
  }

  /// Records `f` as the stream's failure (nothing after it is kept) and returns it.
  private mutating func fail(_ f: Failure) -> Failure {
    failure = f
    ready.removeAll()
    readyHead = 0
    readyBytes = 0
    payload = []
    prefixCount = 0
    return f
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
    case .inflatedTooLarge(let limit):
      return Status(.resourceExhausted, "received message inflates to more than max (\(limit))")
    case .corruptCompressed(let why):
      return Status(.internalError, "could not decompress a message: \(why)")
    }
  }
}
