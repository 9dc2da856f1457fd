/// A call's messages in both directions, for either role. Inbound, it reassembles the peer's
/// DATA into messages and holds back their flow-control credit while a complete message waits
/// for the host (receive back-pressure: the peer can send no more than the stream window beyond
/// what the host asked for). Outbound, it keeps the framed messages nghttp2 has yet to take and
/// says when the host's outstanding send has left. Loop-bound, no nghttp2 calls.
struct MessageBuffer {
  // Inbound.
  private var deframer: MessageDeframer
  /// Complete messages, uncompressed, with whether they came compressed.
  private var received: [(bytes: [UInt8], compressed: Bool)] = []
  private var receivedHead = 0
  /// Bytes received but not yet returned to the peer's window.
  private var heldBytes = 0

  // Outbound: the messages nghttp2 has yet to take (compressed already, if they go so), each
  // framed as it is read (its 5-byte prefix, then its bytes: no framed copy is made), and how
  // far into the oldest it got.
  private var out: [(bytes: [UInt8], compressed: Bool)] = []
  private var outHead = 0
  private var outOffset = 0
  /// Framed bytes queued and taken by nghttp2 since the call began.
  private var queuedBytes = 0
  private var takenBytes = 0
  /// Where each outstanding send ends, in queued bytes, oldest first: a send is done once
  /// nghttp2 took that far.
  private var sendEnds: [Int] = []
  private var sendEndsHead = 0

  init(maxReceiveMessageSize: Int) {
    deframer = MessageDeframer(maxMessageSize: maxReceiveMessageSize)
  }

  // MARK: - Inbound

  /// The peer's message encoding (its `grpc-encoding`), once its head is in.
  var inboundEncoding: MessageEncoding {
    get { deframer.encoding }
    set { deframer.encoding = newValue }
  }

  /// Whether the bytes received so far end inside a message.
  var hasPartialMessage: Bool { deframer.bufferedBytes > 0 }

  /// Whether a complete message waits to be taken.
  var hasMessage: Bool { receivedHead < received.count }

  /// Takes a chunk of DATA. Returns the flow-control credit to give back now: all of it unless a
  /// complete message waits (then it is held until the host takes the messages). Throws if the
  /// stream is malformed or a message is too large; `dropReceived` then returns what is held.
  mutating func receive(
    _ chunk: UnsafeRawBufferPointer, inflatingWith codec: ZlibCodec? = nil
  ) throws(MessageDeframer.Failure) -> Int {
    heldBytes += chunk.count
    deframer.append(chunk)
    while let message = try deframer.next(inflatingWith: codec) {
      received.append((message, deframer.lastWasCompressed))
    }
    if hasMessage { return 0 }
    defer { heldBytes = 0 }
    return heldBytes
  }

  /// The next complete message, whether it came compressed, and the credit its taking frees
  /// (the held bytes, once no message waits any more).
  mutating func nextMessage() -> (message: [UInt8], compressed: Bool, credit: Int)? {
    guard hasMessage else { return nil }
    let (message, compressed) = received[receivedHead]
    received[receivedHead] = ([], false)
    receivedHead += 1
    guard receivedHead == received.count else { return (message, compressed, 0) }
    received.removeAll(keepingCapacity: received.capacity <= 64)
    receivedHead = 0
    defer { heldBytes = 0 }
    return (message, compressed, heldBytes)
  }

  /// Drops everything received (the call ended); returns the credit that was held.
  mutating func dropReceived() -> Int {
    received.removeAll()
    receivedHead = 0
    defer { heldBytes = 0 }
    return heldBytes
  }

  // MARK: - Outbound

  /// Whether framed bytes wait for nghttp2.
  var hasOutbound: Bool { outHead < out.count }

  /// Queues a message (`compressed`: its bytes are compressed in the call's encoding, and its
  /// flag says so). `completesSend`: it is one of the host's outstanding sends, whose SEND_DONE
  /// comes once nghttp2 has taken all of it.
  mutating func enqueue(_ message: [UInt8], compressed: Bool = false, completesSend: Bool) {
    out.append((message, compressed))
    queuedBytes += 5 + message.count
    if completesSend { sendEnds.append(queuedBytes) }
  }

  /// nghttp2 pulls up to `length` bytes into `buffer`. Returns how many, and how many
  /// outstanding sends are now done.
  mutating func read(into buffer: UnsafeMutableRawPointer, length: Int) -> (count: Int, sendsDone: Int) {
    var n = 0
    while n < length && outHead < out.count {
      let (message, compressed) = out[outHead]
      if outOffset < 5 {
        let size = UInt32(truncatingIfNeeded: message.count)
        while outOffset < 5 && n < length {
          // the compressed flag, then the length big-endian
          let byte = outOffset == 0
            ? (compressed ? 1 : 0) : UInt8(truncatingIfNeeded: size >> (8 * (4 - outOffset)))
          buffer.storeBytes(of: byte, toByteOffset: n, as: UInt8.self)
          outOffset += 1
          n += 1
        }
      }
      let done = outOffset - 5
      let take = Swift.max(0, Swift.min(message.count - done, length - n))
      if take > 0 {
        message.withUnsafeBytes { raw in
          (buffer + n).copyMemory(from: raw.baseAddress! + done, byteCount: take)
        }
        outOffset += take
        n += take
      }
      if outOffset == 5 + message.count {
        out[outHead] = ([], false)
        outHead += 1
        outOffset = 0
      }
    }
    if outHead == out.count {
      out.removeAll(keepingCapacity: out.capacity <= 64)
      outHead = 0
    }
    guard n > 0 else { return (0, 0) }
    takenBytes += n
    var done = 0
    while sendEndsHead < sendEnds.count, takenBytes >= sendEnds[sendEndsHead] {
      sendEndsHead += 1
      done += 1
    }
    if sendEndsHead == sendEnds.count {
      sendEnds.removeAll(keepingCapacity: true)
      sendEndsHead = 0
    }
    return (n, done)
  }

  /// Drops what was not sent (the call ended).
  mutating func dropOutbound() {
    out = []
    outHead = 0
    outOffset = 0
    sendEnds = []
    sendEndsHead = 0
  }
}
