import Synchronization

/// The four RPC kinds. Raw values are the ABI's SWIFTGRPC_KIND_* constants.
public enum MethodKind: Int32, Sendable, CustomStringConvertible {
  case unary = 0
  case serverStreaming = 1
  case clientStreaming = 2
  case bidiStreaming = 3

  /// Whether the client sends a stream (the server's host reads messages with `read`).
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

/// An event for the host about one of its calls, server or client. Raw values are the ABI's
/// SWIFTGRPC_EVENT_* constants.
public enum CallEventType: Int32, Sendable {
  /// Server: a new call.
  case call = 1
  /// Server: a request message, in answer to a read.
  case message = 2
  /// Server: the client half-closed, in answer to a read.
  case halfClose = 3
  /// Server: the call ended before the host completed it.
  case cancelled = 4
  /// Client: the response headers.
  case clientInitialMetadata = 5
  /// Client: a response message or the end of the response stream, in answer to a read.
  case clientMessage = 6
  /// Client: an outstanding send is done.
  case clientSendDone = 7
  /// Client: the final status; the call's last event.
  case clientStatus = 8
  /// Server: an outstanding send is done.
  case sendDone = 9
  /// Call credentials plugin: metadata for a call is asked for (`token`: the request,
  /// `method`: the method's name, `authority`: the service URL).
  case credentialsRequest = 10
  /// Server credentials' fetcher: a connection is about to be accepted.
  case credentialsFetch = 11
  /// A server's shutdown begun with a notification is over (`token` 0, the notification's tag).
  case serverShutdown = 12
}

/// The host's tag of a server call (`swiftgrpc_call_set_tag`): set from any thread, read when an
/// event of the call is delivered or, for a queued event, when the host takes it.
public final class HostTag: Sendable {
  private let value = Atomic<UInt>(0)

  init() {}

  public func load() -> UInt { value.load(ordering: .acquiring) }
  func store(_ tag: UInt) { value.store(tag, ordering: .releasing) }
}

/// The event handed to an `EventSink`, borrowed for the duration of `deliver`.
public struct CallEvent {
  public var type: CallEventType
  /// The server call's token or the client call's id.
  public var token: UInt64
  public var kind: MethodKind
  public var method: String
  /// Server CALL: the request's :authority and the peer address.
  public var authority: String = ""
  public var peer: String = ""
  /// Server CALL: request metadata. Client INITIAL_METADATA and STATUS: response headers.
  public var metadata: [MetadataEntry] = []
  /// Server CALL: absolute `monotonicNanos()` deadline, `Time.never` if none.
  public var deadline: Int64 = Time.never
  /// A message: the request (CALL of unary-request kinds, MESSAGE), a response (client
  /// MESSAGE; nil at the end of the stream), the unary response (client STATUS).
  public var message: [UInt8]?
  /// Whether `message` came compressed from the peer (it is handed over inflated).
  public var messageCompressed = false
  /// CANCELLED: why. SEND_DONE: `.ok` or the status that ended the call. Client STATUS: the
  /// outcome.
  public var status = Status(.ok)
  /// Client STATUS: trailing metadata.
  public var trailers: [MetadataEntry] = []
  /// Server CALL: the connection's auth properties (gRPC's auth context):
  /// `transport_security_type` ("insecure" or "ssl"), the TLS session's facts and, for a
  /// verified client certificate, its names (see `TLSTransport.authProperties`).
  public var auth: [MetadataEntry] = []
  /// The host's opaque tag: a client call's, or the one a server call's host set so far.
  public var tag: UInt = 0
  /// Server calls: where the host's tag lives, for an event taken later than it was delivered.
  public var hostTag: HostTag?

  public init(type: CallEventType, token: UInt64, kind: MethodKind, method: String) {
    self.type = type
    self.token = token
    self.kind = kind
    self.method = method
  }
}

/// Where a call's events go: a host function (push) or an event queue (pull). Invoked on the
/// loop thread that owns the call.
public protocol EventSink: AnyObject, Sendable {
  /// Delivers an event. Returns false if the sink no longer accepts events (a shut-down queue);
  /// the loop then ends the call.
  func deliver(_ event: CallEvent) -> Bool
  /// Delivers an event of a call of `loop`, on that loop's thread (a sink may hold it until the
  /// end of the loop's iteration). By default, `deliver(_:)`.
  func deliver(_ event: CallEvent, on loop: EventLoop) -> Bool
  /// Takes back the CALL event of `token` if the host has not taken it yet (a pull queue), so
  /// that a call cancelled while it waited never reaches the host. Returns whether it did.
  func retract(token: UInt64) -> Bool
}

extension EventSink {
  public func retract(token: UInt64) -> Bool { false }
  public func deliver(_ event: CallEvent, on loop: EventLoop) -> Bool { deliver(event) }
}

/// A registered method.
public struct MethodRegistration: Sendable {
  public let path: String
  public let kind: MethodKind
  public let sink: EventSink

  public init(path: String, kind: MethodKind, sink: EventSink) {
    self.path = path
    self.kind = kind
    self.sink = sink
  }
}

/// Why a host operation on a call was refused.
public enum CallError: Error, Equatable, Sendable {
  /// The token (or client call id) was never issued by this server (channel).
  case unknown
  /// The call has ended: finished, cancelled, or its status delivered.
  case ended
  /// Server: `complete` was already accepted.
  case alreadyCompleted
  case wrongState(String)
  /// A message is above the send limit.
  case tooLarge(String)
}
