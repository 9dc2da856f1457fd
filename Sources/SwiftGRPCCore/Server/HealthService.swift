/// gRPC's health checking service (grpc.health.v1.Health, doc/health-checking.md), served by the
/// library itself for a server that enables it: Check answers a service's status (NOT_FOUND for
/// a service never set), Watch streams it and every change. Statuses are set from any thread.
/// A graceful shutdown first sets every service NOT_SERVING and ends the Watch streams, so that
/// load balancers and probes stop sending before the server stops. The two messages have one
/// field each, encoded here by hand: `HealthCheckRequest { string service = 1; }` and
/// `HealthCheckResponse { ServingStatus status = 1; }`.
public final class HealthService: EventSink, @unchecked Sendable {
  // @unchecked: every mutable field is under `state`; the server is set once, before start.

  /// grpc.health.v1.HealthCheckResponse.ServingStatus.
  public enum ServingStatus: Int32, Sendable {
    case unknown = 0, serving = 1, notServing = 2, serviceUnknown = 3
  }

  public static let checkPath = "/grpc.health.v1.Health/Check"
  public static let watchPath = "/grpc.health.v1.Health/Watch"

  /// One Watch call: the status it was sent last, and whether a send is on its way (then a
  /// change waits for its SEND_DONE, and only the latest status goes).
  private struct Watcher {
    var service: String
    var sent: ServingStatus?
    var sending = false
  }

  private struct State {
    /// The overall status ("") starts SERVING, as gRPC C++'s default health service.
    var statuses: [String: ServingStatus] = ["": .serving]
    var watchers: [UInt64: Watcher] = [:]
    var shuttingDown = false
  }

  private let state = Locked(State())
  private weak var server: Server?

  init(server: Server) {
    self.server = server
  }

  // MARK: - Statuses (any thread)

  /// Sets `service`'s status and tells its watchers. Ignored once a graceful shutdown began
  /// (as grpcio-health-checking's `enter_graceful_shutdown`). Returns false then.
  @discardableResult
  public func set(_ service: String, _ status: ServingStatus) -> Bool {
    let sends = state.withLock { s -> [(UInt64, ServingStatus)]? in
      if s.shuttingDown { return nil }
      s.statuses[service] = status
      return HealthService.pending(&s, service: service)
    }
    guard let sends else { return false }
    send(sends)
    return true
  }

  public func status(of service: String) -> ServingStatus? {
    state.withLock { $0.statuses[service] }
  }

  /// Every service NOT_SERVING, every watcher told and its stream ended; later `set`s ignored.
  func enterGracefulShutdown() {
    let watchers = state.withLock { s -> [(UInt64, ServingStatus)] in
      s.shuttingDown = true
      for key in s.statuses.keys { s.statuses[key] = .notServing }
      let all = s.watchers.map { ($0.key, ServingStatus.notServing) }
      s.watchers.removeAll()
      return all
    }
    guard let server else { return }
    for (token, status) in watchers {
      _ = server.answer(token: token, .send(HealthService.response(status)))
      _ = server.answer(
        token: token,
        .complete(message: nil, status: Status(.unavailable, "the server is shutting down"), trailers: []))
    }
  }

  /// The watchers of `service` whose last status is not the current one and that have no send
  /// on its way: marked sending, returned with what to send.
  private static func pending(_ s: inout State, service: String) -> [(UInt64, ServingStatus)] {
    let current = s.statuses[service] ?? .serviceUnknown
    var out: [(UInt64, ServingStatus)] = []
    for (token, w) in s.watchers where w.service == service && !w.sending && w.sent != current {
      s.watchers[token]?.sending = true
      s.watchers[token]?.sent = current
      out.append((token, current))
    }
    return out
  }

  private func send(_ sends: [(UInt64, ServingStatus)]) {
    guard let server else { return }
    for (token, status) in sends where server.answer(token: token, .send(HealthService.response(status))) != nil {
      _ = state.withLock { $0.watchers.removeValue(forKey: token) }  // the call has ended
    }
  }

  // MARK: - The calls (loop threads)

  public func deliver(_ event: CallEvent) -> Bool {
    guard let server else { return false }
    switch event.type {
    case .call:
      guard let service = HealthService.service(in: event.message ?? []) else {
        _ = server.answer(token: event.token, .complete(
          message: nil, status: Status(.invalidArgument, "malformed HealthCheckRequest"), trailers: []))
        return true
      }
      if event.method == HealthService.checkPath {
        check(event.token, service, server)
      } else {
        watch(event.token, service)
      }
    case .sendDone:
      let sends = state.withLock { s -> [(UInt64, ServingStatus)] in
        guard let service = s.watchers[event.token]?.service else { return [] }
        s.watchers[event.token]?.sending = false
        return HealthService.pending(&s, service: service)
      }
      send(sends)
    case .cancelled:
      _ = state.withLock { $0.watchers.removeValue(forKey: event.token) }
    default:
      break
    }
    return true
  }

  private func check(_ token: UInt64, _ service: String, _ server: Server) {
    let op: CallOp
    if let status = state.withLock({ $0.statuses[service] }) {
      op = .complete(message: HealthService.response(status), status: Status(.ok), trailers: [])
    } else {
      op = .complete(message: nil, status: Status(.notFound, "unknown service"), trailers: [])
    }
    _ = server.answer(token: token, op)
  }

  private func watch(_ token: UInt64, _ service: String) {
    let sends = state.withLock { s -> [(UInt64, ServingStatus)]? in
      if s.shuttingDown { return nil }
      s.watchers[token] = Watcher(service: service)
      return HealthService.pending(&s, service: service)
    }
    guard let sends else {
      _ = server?.answer(token: token, .complete(
        message: HealthService.response(.notServing),
        status: Status(.unavailable, "the server is shutting down"), trailers: []))
      return
    }
    send(sends)
  }

  // MARK: - The two messages

  /// `HealthCheckResponse { status = 1 }`: the varint field, omitted for 0 as proto3 does.
  static func response(_ status: ServingStatus) -> [UInt8] {
    status == .unknown ? [] : [0x08, UInt8(status.rawValue)]
  }

  /// The service of a `HealthCheckRequest`, skipping unknown fields; nil if it is malformed.
  static func service(in message: [UInt8]) -> String? {
    var service = ""
    var i = 0
    func varint() -> UInt64? {
      var v: UInt64 = 0
      var shift: UInt64 = 0
      while i < message.count, shift < 64 {
        let b = message[i]
        i += 1
        v |= UInt64(b & 0x7F) << shift
        if b & 0x80 == 0 { return v }
        shift += 7
      }
      return nil
    }
    while i < message.count {
      guard let key = varint() else { return nil }
      switch key & 7 {
      case 0:
        guard varint() != nil else { return nil }
      case 1:
        i += 8
      case 5:
        i += 4
      case 2:
        guard let n = varint(), n <= UInt64(message.count - i) else { return nil }
        let bytes = message[i..<(i + Int(n))]
        i += Int(n)
        if key >> 3 == 1 {
          guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
          service = s
        }
      default:
        return nil
      }
      if i > message.count { return nil }
    }
    return service
  }
}
