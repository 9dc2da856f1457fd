/// The state of one call, server or client: the two halves of its HTTP/2 stream and the host's
/// operations in flight. It is the one place that says what may happen next: host threads
/// validate their operations against it (under the registry lock, so a refused operation
/// changes nothing and returns at once) and the loop records what the wire did. Pure: each
/// `mutating func` checks one step and says what the caller must do; the caller applies that
/// after releasing the lock.
public struct CallStateMachine: Equatable, Sendable {
  public enum Role: Sendable { case server, client }

  /// One direction of the stream: `open` once its headers are on their way (or arrived), `closed`
  /// after its end (the client's END_STREAM; the server's trailers with the status).
  public enum Half: Equatable, Sendable { case idle, open, closed }

  /// Why a host operation is refused.
  public enum Refusal: Error, Equatable, Sendable {
    /// The call is over for the host (cancelled, finished, its status delivered).
    case ended
    /// Server: `complete` was already accepted.
    case alreadyCompleted
    case wrongState(String)
  }

  /// What the loop does when a server call's response ends (the host's completion or a status
  /// the library gives).
  public enum ResponseEnd: Equatable, Sendable {
    /// Nothing went out yet and no message goes: one HEADERS frame with the status.
    case trailersOnly
    /// Trailers after the messages; `submitHeaders` if the response headers still have to go.
    case trailers(submitHeaders: Bool)
    /// The response already ended.
    case none
  }

  /// What the host still waited for when the call ended: each gets its event, in this order.
  public struct Ending: Equatable, Sendable {
    /// Server: the host had not completed the call: it gets CANCELLED.
    public var cancelHost = false
    /// Client: an outstanding send gets its SEND_DONE, each outstanding read its MESSAGE.
    public var sendsOutstanding = 0
    public var readsOutstanding = 0
  }

  /// Sends the host may have outstanding at once (each answered by one SEND_DONE, in order):
  /// the library then holds at most this many unsent messages of a call.
  public static let maxOutstandingSends = 64

  /// Client: reads the host may have outstanding at once (each answered by one message event,
  /// in order), so that messages inside the window reach it without a round trip each. Bounds
  /// what the library hands the host ahead of its asking: this many messages.
  public static let maxOutstandingReads = 256

  public let role: Role
  public let kind: MethodKind
  /// The request stream.
  public private(set) var client = Half.idle
  /// The response: headers, messages, status.
  public private(set) var server = Half.idle
  /// The call is over for the host: no more events, every operation refused.
  public private(set) var ended = false
  /// Server: `complete` accepted. Client: half-closed (at once for unary-request kinds).
  public private(set) var hostClosed: Bool
  /// Sends waiting for their SEND_DONE.
  public private(set) var sendsOutstanding = 0
  /// Reads waiting for their message event (server: at most 1).
  public private(set) var readsOutstanding = 0
  /// Messages the host sent (server: responses, counting the one given to `complete`).
  public private(set) var messagesSent = 0
  /// Server: response headers were asked for (explicitly or by the first message).
  public private(set) var headersRequested = false
  /// The end of the peer's message stream was delivered to the host (server: HALF_CLOSE).
  public private(set) var endDelivered = false

  public init(role: Role, kind: MethodKind) {
    self.role = role
    self.kind = kind
    hostClosed = role == .client && !kind.clientStreams
  }

  // MARK: - Host operations (any thread, under the registry lock)

  /// Validates `op` and records it; throws (changing nothing) if it is not allowed now.
  public mutating func host(_ op: CallOp) throws(Refusal) {
    if ended { throw .ended }
    switch role {
    case .server: try serverHost(op)
    case .client: try clientHost(op)
    }
  }

  private mutating func serverHost(_ op: CallOp) throws(Refusal) {
    if hostClosed { throw .alreadyCompleted }
    switch op {
    case .initialMetadata:
      if headersRequested { throw .wrongState("initial metadata was already sent") }
      headersRequested = true
    case .send:
      if !kind.serverStreams && messagesSent >= 1 {
        throw .wrongState("a \(kind) method sends at most one response message")
      }
      try admitSend()
      messagesSent += 1
      headersRequested = true
    case .setCompression:
      if headersRequested {
        throw .wrongState("compression must be chosen before the response headers are sent")
      }
    case .read:
      if !kind.clientStreams { throw .wrongState("reads are only for client- and bidi-streaming calls") }
      if readsOutstanding > 0 { throw .wrongState("a read is already outstanding") }
      if endDelivered { throw .wrongState("the client already half-closed") }
      readsOutstanding = 1
    case .complete(let message, _, _):
      if message != nil {
        if !kind.serverStreams && messagesSent >= 1 {
          throw .wrongState("a \(kind) method sends at most one response message")
        }
        messagesSent += 1
      }
      hostClosed = true
    case .halfClose, .cancel:
      throw .wrongState("half-close and cancel are client-call operations")
    }
  }

  private mutating func admitSend() throws(Refusal) {
    if sendsOutstanding >= CallStateMachine.maxOutstandingSends {
      throw .wrongState("\(CallStateMachine.maxOutstandingSends) sends are outstanding: wait for a SEND_DONE event")
    }
    sendsOutstanding += 1
  }

  private mutating func clientHost(_ op: CallOp) throws(Refusal) {
    switch op {
    case .send:
      if !kind.clientStreams { throw .wrongState("a \(kind) call sends its one request at start") }
      if hostClosed { throw .wrongState("the call was half-closed: no more messages") }
      try admitSend()
      messagesSent += 1
    case .halfClose:
      if hostClosed { throw .wrongState("the call is already half-closed") }
      hostClosed = true
    case .read:
      if !kind.serverStreams { throw .wrongState("a \(kind) call gets its response with the STATUS event") }
      if readsOutstanding >= CallStateMachine.maxOutstandingReads {
        throw .wrongState("\(CallStateMachine.maxOutstandingReads) reads are already outstanding")
      }
      readsOutstanding += 1
    case .cancel:
      break
    case .initialMetadata, .complete, .setCompression:
      throw .wrongState("initial metadata, completion and set-compression are server-call operations")
    }
  }

  // MARK: - The wire (loop thread)

  /// The request head arrived and was accepted (server), or the request headers went out on a
  /// stream (client).
  public mutating func requestOpened() {
    if client == .idle { client = .open }
  }

  /// The request stream ended: END_STREAM received (server) or sent (client).
  public mutating func requestEnded() {
    client = .closed
  }

  /// Client: the stream was refused before the server processed it; the call goes again on a
  /// new stream (a transparent retry, gRFC A6), both halves as before it was opened.
  public mutating func streamRetried() {
    client = .idle
    server = .idle
  }

  /// Server: the response headers go out now (explicit initial metadata or the first message).
  /// Returns false if they already went.
  public mutating func openResponse() -> Bool {
    guard server == .idle else { return false }
    server = .open
    return true
  }

  /// Server: the response ends (the host completed, or the library ends the call with a status).
  /// `withMessage`: a last message goes before the status.
  public mutating func endResponse(withMessage: Bool) -> ResponseEnd {
    switch server {
    case .closed:
      return .none
    case .idle:
      server = .closed
      return withMessage ? .trailers(submitHeaders: true) : .trailersOnly
    case .open:
      server = .closed
      return .trailers(submitHeaders: false)
    }
  }

  /// What a header block of the response is, for a client.
  public enum ResponseBlock: Equatable, Sendable {
    /// The response headers.
    case head
    /// The first block ends the stream: headers and status in one.
    case trailersOnly
    /// The trailers after the messages.
    case trailers
  }

  /// Client: a header block of the response arrived.
  public mutating func responseHeadersReceived(endsStream: Bool) -> ResponseBlock {
    let first = server == .idle
    server = endsStream ? .closed : .open
    if !first { return .trailers }
    return endsStream ? .trailersOnly : .head
  }

  // MARK: - Events for the host (loop thread)

  /// The oldest outstanding send is done (the message left). Returns whether the host gets
  /// SEND_DONE for it: not once the call ended or (server) was completed.
  public mutating func sendCompleted() -> Bool {
    guard sendsOutstanding > 0 else { return false }
    sendsOutstanding -= 1
    return !ended && !(role == .server && hostClosed)
  }

  /// Answers the oldest outstanding read with a message, or with the end of the peer's stream.
  /// Returns whether the host gets the event.
  public mutating func readAnswered(endOfStream: Bool) -> Bool {
    guard readsOutstanding > 0, !ended, !(role == .server && hostClosed) else { return false }
    readsOutstanding -= 1
    if endOfStream { endDelivered = true }
    return true
  }

  /// The call is over for the host. Returns what the host still waited for (empty the second
  /// time).
  public mutating func end() -> Ending {
    guard !ended else { return Ending() }
    ended = true
    var e = Ending()
    switch role {
    case .server:
      e.cancelHost = !hostClosed
    case .client:
      e.sendsOutstanding = sendsOutstanding
      e.readsOutstanding = readsOutstanding
    }
    sendsOutstanding = 0
    readsOutstanding = 0
    return e
  }
}

/// What a host asks of one of its calls; validated on the host's thread against the call's
/// `CallStateMachine`, then applied on the call's loop.
public enum CallOp: Sendable {
  /// Server: send the response headers now, with this metadata.
  case initialMetadata([MetadataEntry])
  /// A message: a response (server) or a request (client). Answered by SEND_DONE. `compress`:
  /// in the call's encoding (false: this message goes uncompressed, C-core's
  /// GRPC_WRITE_NO_COMPRESS).
  case send([UInt8], compress: Bool = true)
  /// Server: compress the response in this encoding (if the client accepts it). Before the
  /// response headers only.
  case setCompression(MessageEncoding)
  /// Asks for the next message of the peer's stream. Answered by one message event.
  case read
  /// Server: the last message (if any), then the status and trailing metadata.
  case complete(message: [UInt8]?, status: Status, trailers: [MetadataEntry])
  /// Client: no more request messages.
  case halfClose
  /// Client: cancel the call.
  case cancel
}

extension CallOp {
  /// The size of the message the operation sends, if any.
  var messageSize: Int? {
    switch self {
    case .send(let m, _): return m.count
    case .complete(let m?, _, _): return m.count
    default: return nil
    }
  }
}
