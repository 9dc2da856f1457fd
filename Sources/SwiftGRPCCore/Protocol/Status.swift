/// A gRPC status code, 0–16, as in grpc/grpc `doc/statuscodes.md`.
public enum StatusCode: Int32, Sendable, CaseIterable {
  case ok = 0
  case cancelled = 1
  case unknown = 2
  case invalidArgument = 3
  case deadlineExceeded = 4
  case notFound = 5
  case alreadyExists = 6
  case permissionDenied = 7
  case resourceExhausted = 8
  case failedPrecondition = 9
  case aborted = 10
  case outOfRange = 11
  case unimplemented = 12
  case internalError = 13
  case unavailable = 14
  case dataLoss = 15
  case unauthenticated = 16
}

/// The outcome of a call: a code and a human-readable message (UTF-8).
public struct Status: Sendable, Equatable {
  public var code: StatusCode
  public var message: String

  public init(_ code: StatusCode, _ message: String = "") {
    self.code = code
    self.message = message
  }
}
