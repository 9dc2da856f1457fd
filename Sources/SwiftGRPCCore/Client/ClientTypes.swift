/// An event for the host about one of its client calls. Raw values are SWIFTGRPC_EVENT_*.
public enum ClientEventType: Int32, Sendable {
  /// Response headers arrived (streaming-response kinds only).
  case initialMetadata = 5
  /// In answer to a read: a response message, or none (end of the response stream).
  case message = 6
  /// In answer to a send: the message went to HTTP/2 (`status.code == .ok`) or the call ended.
  case sendDone = 7
  /// The final status; always the call's last event.
  case status = 8
}

/// The event handed to a `ClientSink`, borrowed for the duration of `deliver`.
public struct ClientEvent {
  public var type: ClientEventType
  public var call: UInt64
  public var channelID: UInt64
  public var kind: MethodKind
  /// The host's opaque tag, given at call start.
  public var tag: UInt
  /// Initial (response header) metadata: for `.initialMetadata` and `.status`.
  public var metadata: [MetadataEntry]
  /// `.message`: the message, nil at end of stream. `.status` of a unary-response call: the
  /// response, if one arrived.
  public var message: [UInt8]?
  /// `.status`: the outcome. `.sendDone`: `.ok`, or the status that ended the call first.
  public var status: Status
  /// `.status`: trailing metadata.
  public var trailers: [MetadataEntry]
}

/// Where a call's events go: a host function (push) or an event queue (pull). Invoked on the
/// loop thread that owns the call.
public protocol ClientSink: AnyObject, Sendable {
  /// Delivers an event. Returns false if the sink no longer accepts events (a shut-down queue);
  /// the loop then cancels the call and drops its later events.
  func deliver(_ event: ClientEvent) -> Bool
}

/// What a host asks of a started call; validated on the host's thread, applied on the loop.
public enum ClientOp: Sendable {
  case send([UInt8])
  case halfClose
  case read
  case cancel
}

/// Why a client call operation was refused.
public enum ClientCallError: Error, Equatable, Sendable {
  /// The id was never issued by this channel.
  case unknownCall
  /// The call has ended (its status event was delivered or is being delivered).
  case ended
  case wrongState(String)
}

/// Everything needed to start a call.
public struct CallStart: Sendable {
  public var method: String
  public var kind: MethodKind
  public var metadata: [MetadataEntry]
  /// The request of a unary or server-streaming call (sent with END_STREAM).
  public var message: [UInt8]?
  /// Absolute `monotonicNanos()` deadline; `Int64.max` for none; nil for the channel default.
  public var deadline: Int64?
  public var waitForReady: Bool
  public var sink: ClientSink
  public var tag: UInt

  public init(
    method: String, kind: MethodKind, metadata: [MetadataEntry] = [], message: [UInt8]? = nil,
    deadline: Int64? = nil, waitForReady: Bool = false, sink: ClientSink, tag: UInt = 0
  ) {
    self.method = method
    self.kind = kind
    self.metadata = metadata
    self.message = message
    self.deadline = deadline
    self.waitForReady = waitForReady
    self.sink = sink
    self.tag = tag
  }
}

/// Connectivity of a channel, as gRPC defines it. Raw values are SWIFTGRPC_CHANNEL_*.
public enum ConnectivityState: Int32, Sendable {
  case idle = 0
  case connecting = 1
  case ready = 2
  case transientFailure = 3
  case shutdown = 4
}
