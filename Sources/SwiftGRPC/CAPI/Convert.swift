import CSwiftGRPCABI
import SwiftGRPCCore

/// Largest byte string accepted through the ABI (a message, a metadata value).
let maxABILength = 1 << 31

/// Reads a required NUL-terminated UTF-8 string.
func cString(_ p: UnsafePointer<CChar>?, _ what: String) throws(ABIError) -> String {
  guard let p else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "\(what) is NULL") }
  guard let s = String(validatingCString: p) else {
    throw ABIError(SWIFTGRPC_E_INVALID_UTF8, "\(what) is not valid UTF-8")
  }
  return s
}

/// Copies a (pointer, length) byte string.
func bytes(_ p: UnsafeRawPointer?, _ len: Int, _ what: String) throws(ABIError) -> [UInt8] {
  if len == 0 { return [] }
  guard len > 0, len <= maxABILength else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "\(what) length \(len) is out of range")
  }
  guard let p else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "\(what) is NULL with length \(len)") }
  return Array(UnsafeRawBufferPointer(start: p, count: len))
}

/// Copies and validates a metadata array the host wants to send.
func metadata(_ p: UnsafePointer<swiftgrpc_metadata>?, _ count: Int) throws(ABIError)
  -> [MetadataEntry]
{
  if count == 0 { return [] }
  guard count > 0, count <= 10_000 else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "metadata count \(count) is out of range")
  }
  guard let p else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "metadata is NULL with count \(count)") }
  var out = [MetadataEntry]()
  out.reserveCapacity(count)
  var total = 0
  for i in 0..<count {
    let m = p[i]
    guard m.key_len > 0, m.key_len <= 1024 else {
      throw ABIError(SWIFTGRPC_E_INVALID_METADATA, "metadata[\(i)]: key length \(m.key_len) is out of range")
    }
    guard let keyPtr = m.key else {
      throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "metadata[\(i)]: key is NULL")
    }
    let key = UnsafeRawBufferPointer(start: keyPtr, count: m.key_len)
    if let e = MetadataValidation.validate(key: key) {
      throw ABIError(SWIFTGRPC_E_INVALID_METADATA, "metadata[\(i)]: \(e)")
    }
    let value = try bytes(m.value, m.value_len, "metadata[\(i)] value")
    total += m.key_len + value.count
    guard total <= 1 << 20 else {
      throw ABIError(SWIFTGRPC_E_INVALID_METADATA, "metadata is larger than 1 MiB in total")
    }
    let keyString = String(decoding: key, as: UTF8.self)
    if !MetadataValidation.isBinaryKey(key), let e = MetadataValidation.validate(value: value, key: keyString) {
      throw ABIError(SWIFTGRPC_E_INVALID_METADATA, "metadata[\(i)]: \(e)")
    }
    out.append(MetadataEntry(key: keyString, value: value))
  }
  return out
}

/// The encoding of a SWIFTGRPC_COMPRESS_* algorithm named `name` in errors.
func messageEncoding(_ algorithm: Int64, _ name: String) throws(ABIError) -> MessageEncoding {
  guard let e = MessageEncoding(algorithm: algorithm) else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "\(name) \(algorithm) is not a SWIFTGRPC_COMPRESS_* algorithm")
  }
  return e
}

/// Whether a message sent with SWIFTGRPC_WRITE_* `flags` is compressed (in the call's encoding).
func compresses(writeFlags flags: UInt32) throws(ABIError) -> Bool {
  guard flags & ~SWIFTGRPC_WRITE_NO_COMPRESS == 0 else {
    throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "unknown write flags 0x\(String(flags, radix: 16))")
  }
  return flags & SWIFTGRPC_WRITE_NO_COMPRESS == 0
}
