/// Metadata a client adds to its calls to authenticate them (gRPC's call credentials): fixed
/// entries (an access token), or a host plugin asked per call, which answers later from any
/// thread. Composable; sent only on TLS channels (a call on a plaintext channel that carries
/// them fails with UNAUTHENTICATED, as gRPC C-core does).
public final class CallCredentials: Sendable {
  enum Source: Sendable {
    case metadata([MetadataEntry])
    /// The plugin's requests go to this sink (a CREDENTIALS_REQUEST event, `tag` the host's).
    case plugin(EventSink, tag: UInt)
  }

  let sources: [Source]

  private init(_ sources: [Source]) { self.sources = sources }

  /// Fixed metadata on every call.
  public convenience init(metadata: [MetadataEntry]) { self.init([.metadata(metadata)]) }

  /// `authorization: Bearer <token>`.
  public convenience init(accessToken: String) {
    self.init(metadata: [MetadataEntry("authorization", "Bearer " + accessToken)])
  }

  /// A plugin: each call asks `sink` (a CREDENTIALS_REQUEST event) and waits for its answer.
  public convenience init(plugin sink: EventSink, tag: UInt) { self.init([.plugin(sink, tag: tag)]) }

  /// All of them, in order.
  public static func compose(_ parts: [CallCredentials]) -> CallCredentials {
    CallCredentials(parts.flatMap(\.sources))
  }
}

/// The credential requests waiting for their plugin's answer, process-wide: a request id is
/// never reused; an answer is validated here on the host's thread and handed to the call's
/// loop. A request ends with its answer or with its call.
public enum CredentialRequests {
  struct Pending {
    let call: ClientCall
    let loop: EventLoop
  }

  struct Table {
    var pending: [UInt64: Pending] = [:]
    var next: UInt64 = 1
  }

  static let table = Locked(Table())

  static func begin(_ call: ClientCall) -> UInt64 {
    table.withLock { t in
      let id = t.next
      t.next += 1
      t.pending[id] = Pending(call: call, loop: call.loop)
      return id
    }
  }

  /// Forgets a request whose call ended (loop thread).
  static func cancel(_ id: UInt64) {
    _ = table.withLock { $0.pending.removeValue(forKey: id) }
  }

  public enum AnswerError: Error, Equatable, Sendable {
    /// Never issued.
    case unknown
    /// Answered already, or its call ended.
    case ended
  }

  /// The host's answer to request `id`: metadata (validated by the caller) or a failure
  /// message. Any thread.
  public static func answer(_ id: UInt64, metadata: [MetadataEntry], failure: String?)
    -> AnswerError?
  {
    let found: Pending?? = table.withLock { t in
      if id == 0 || id >= t.next { return .none }
      return .some(t.pending.removeValue(forKey: id))
    }
    guard let found else { return .unknown }
    guard let p = found else { return .ended }
    let call = p.call
    let accepted = p.loop.execute {
      call.credentialsAnswered(request: id, metadata: metadata, failure: failure)
    }
    return accepted ? nil : .ended
  }
}
