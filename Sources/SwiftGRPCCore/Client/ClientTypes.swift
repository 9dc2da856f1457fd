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
  public var sink: EventSink
  public var tag: UInt
  /// Call credentials of this call (added to the channel's).
  public var credentials: CallCredentials?
  /// The encoding of this call's requests; nil: the channel's default.
  public var compression: MessageEncoding?

  public init(
    method: String, kind: MethodKind, metadata: [MetadataEntry] = [], message: [UInt8]? = nil,
    deadline: Int64? = nil, waitForReady: Bool = false, sink: EventSink, tag: UInt = 0,
    credentials: CallCredentials? = nil
  ) {
    self.credentials = credentials
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
