/// gRPC method paths: what a server may register and what a client may call.
public enum MethodPath {
  /// Why `path` cannot be registered, or nil: it must be "/package.Service/Method", visible
  /// ASCII.
  public static func registrationError(_ path: String) -> String? {
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    guard path.hasPrefix("/"), parts.count == 3, !parts[1].isEmpty, !parts[2].isEmpty,
      path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
    else { return "method '\(path)' is not of the form /package.Service/Method" }
    return nil
  }

  /// Why `path` cannot be called, or nil: "/" and more, printable ASCII (a header value).
  public static func callError(_ path: String) -> String? {
    guard path.hasPrefix("/"), path.utf8.count > 1,
      MetadataValidation.validate(value: Array(path.utf8), key: ":path") == nil
    else { return "method '\(path)' is not a path like /pkg.Service/Method" }
    return nil
  }
}
