import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

/// The per-thread last error message (a malloc'd C string owned by the thread's slot).
private let lastErrorKey: pthread_key_t = {
  var key = pthread_key_t()
  pthread_key_create(&key) { free($0) }
  return key
}()

/// Records `message` as the calling thread's last error and returns `code`.
func fail(_ code: Int32, _ message: String) -> Int32 {
  let old = pthread_getspecific(lastErrorKey)
  let copy = strdup(message)
  pthread_setspecific(lastErrorKey, copy)
  free(old)
  return code
}

/// An error raised inside a thunk: a result code and a message.
struct ABIError: Error {
  let code: Int32
  let message: String
  init(_ code: Int32, _ message: String) {
    self.code = code
    self.message = message
  }
}

/// Runs a thunk body, turning a thrown ABIError into its code (and the last-error message).
@inline(__always)
func guarded(_ body: () throws(ABIError) -> Void) -> Int32 {
  do {
    try body()
    return SWIFTGRPC_OK
  } catch {
    return fail(error.code, error.message)
  }
}

@_cdecl("swiftgrpc_errstr")
public func swiftgrpc_errstr(_ code: Int32) -> UnsafePointer<CChar> {
  let text: StaticString
  switch code {
  case SWIFTGRPC_OK: text = "ok"
  case SWIFTGRPC_E_NULL_ARGUMENT: text = "a required pointer argument was NULL"
  case SWIFTGRPC_E_BAD_HANDLE: text = "bad handle (zero, stale, or of the wrong type)"
  case SWIFTGRPC_E_INVALID_ARGUMENT: text = "invalid argument"
  case SWIFTGRPC_E_INVALID_METADATA: text = "invalid metadata key or value"
  case SWIFTGRPC_E_INVALID_UTF8: text = "string is not valid UTF-8"
  case SWIFTGRPC_E_WRONG_STATE: text = "not allowed in the current state"
  case SWIFTGRPC_E_UNKNOWN_TOKEN: text = "unknown token"
  case SWIFTGRPC_E_TOKEN_CLOSED: text = "the token's call has ended"
  case SWIFTGRPC_E_ALREADY_COMPLETED: text = "the call was already completed"
  case SWIFTGRPC_E_ALREADY_EXISTS: text = "already exists"
  case SWIFTGRPC_E_SYSTEM: text = "system call failed"
  case SWIFTGRPC_E_TOO_LARGE: text = "message too large"
  case SWIFTGRPC_E_RECURSIVE_CALL: text = "not allowed from a library thread (inside a callback)"
  case SWIFTGRPC_E_TIMEOUT: text = "timed out"
  case SWIFTGRPC_E_SHUTDOWN: text = "shut down"
  case SWIFTGRPC_E_NO_MEMORY: text = "out of memory"
  default: text = "unknown result code"
  }
  return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

private let emptyCString: StaticString = ""

@_cdecl("swiftgrpc_last_error")
public func swiftgrpc_last_error() -> UnsafePointer<CChar> {
  if let p = pthread_getspecific(lastErrorKey) {
    return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
  }
  return UnsafeRawPointer(emptyCString.utf8Start).assumingMemoryBound(to: CChar.self)
}

private let versionString: StaticString = "0.9.0"

@_cdecl("swiftgrpc_version_number")
public func swiftgrpc_version_number() -> Int32 { SWIFTGRPC_VERSION_NUMBER }

@_cdecl("swiftgrpc_version_string")
public func swiftgrpc_version_string() -> UnsafePointer<CChar> {
  UnsafeRawPointer(versionString.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("swiftgrpc_now_ns")
public func swiftgrpc_now_ns() -> Int64 { monotonicNanos() }
