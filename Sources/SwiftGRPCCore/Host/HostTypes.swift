/// The four RPC kinds. Raw values are the ABI's SWIFTGRPC_KIND_* constants.
public enum MethodKind: Int32, Sendable, CustomStringConvertible {
  case unary = 0
  case serverStreaming = 1
  case clientStreaming = 2
  case bidiStreaming = 3

  /// Whether the client sends a stream (the host reads messages with `read`).
  public var clientStreams: Bool { self == .clientStreaming || self == .bidiStreaming }
  /// Whether the server may send more than one message.
  public var serverStreams: Bool { self == .serverStreaming || self == .bidiStreaming }

  public var description: String {
    switch self {
    case .unary: return "unary"
    case .serverStreaming: return "server-streaming"
    case .clientStreaming: return "client-streaming"
    case .bidiStreaming: return "bidi-streaming"
    }
  }
}

/// What a host sends for a token; validated on the host's thread, applied on the loop.
public enum HostAnswer: Sendable {
  case initialMetadata([MetadataEntry])
  case message([UInt8])
  case read
  case complete(message: [UInt8]?, status: Status, trailers: [MetadataEntry])
}

/// An event for the host about one of its calls. Raw values are SWIFTGRPC_EVENT_*.
public enum HostEventType: Int32, Sendable {
  case call = 1
  case message = 2
  case halfClose = 3
  case cancelled = 4
}

/// The event handed to a `HostSink`, borrowed for the duration of `deliver`.
public struct HostEvent {
  public var type: HostEventType
  public var token: UInt64
  public var serverID: UInt64
  public var method: String
  public var kind: MethodKind
  public var authority: String
  public var peer: String
  public var metadata: [MetadataEntry]
  /// Absolute `monotonicNanos()` deadline, `Int64.max` if none.
  public var deadline: Int64
  public var message: [UInt8]?
  /// For `.cancelled`: why.
  public var statusCode: StatusCode
}

/// Where a method's events go: a host function (push) or an event queue (pull). Invoked on the
/// loop thread that owns the call.
public protocol HostSink: AnyObject, Sendable {
  /// Delivers an event. Returns false if the sink no longer accepts events (a shut-down queue);
  /// the loop then cancels the call.
  func deliver(_ event: HostEvent) -> Bool
}

/// A registered method.
public struct MethodRegistration: Sendable {
  public let path: String
  public let kind: MethodKind
  public let sink: HostSink

  public init(path: String, kind: MethodKind, sink: HostSink) {
    self.path = path
    self.kind = kind
    self.sink = sink
  }
}

/// What a token answers to: the loop hands it each host answer, on the loop thread.
protocol HostAnswerable: AnyObject {
  func hostAnswered(_ answer: HostAnswer)
}
