import Glibc

/// Every descriptor the library holds (sockets, epoll and event descriptors), so that a forked
/// child can close its copies: a child must not keep the parent's connections and listeners open
/// (their peers would never see them close), and must not shut them down either (that would end
/// them for the parent too). Opening and closing go through here; each is a short lock.
public enum FileDescriptors {
  static let open = Locked(Set<Int32>())

  /// Records a descriptor just opened (negative: a failed call, passed through).
  @inline(__always)
  static func track(_ fd: Int32) -> Int32 {
    if fd >= 0 { open.withLock { _ = $0.insert(fd) } }
    return fd
  }

  /// Closes a descriptor opened through `track`.
  static func close(_ fd: Int32) {
    guard fd >= 0 else { return }
    open.withLock { set in
      set.remove(fd)
      _ = Glibc.close(fd)  // under the lock: the number cannot be reissued and tracked meanwhile
    }
  }

  /// How many descriptors the library holds now (tests).
  public static var count: Int { open.withLock { $0.count } }
}

/// What `pthread_atfork` runs around fork(): the process-wide locks are taken before it (so the
/// child's copies are never caught half-way through an update by a thread that does not exist
/// in the child) and released after it; the child also closes the library's descriptors. The
/// ABI layer adds its handle registry and abandons the runtimes that were created before fork.
public enum ForkSupport {
  /// The process-wide locks, in the order they are taken (each is a leaf: nothing takes another
  /// while holding one of these, except the ABI's registry, taken before them).
  private static var locks: [Lock] {
    [Server.ids.lock, Channel.ids.lock, Channel.loopCursor.lock, CredentialRequests.table.lock,
     FileDescriptors.open.lock]
  }

  public static func prepare() {
    for l in locks { l.lock() }
  }

  public static func parent() {
    for l in locks.reversed() { l.unlock() }
  }

  /// In the child (one thread: the one that forked): releases the locks and closes every
  /// descriptor the library held. The objects that used them are abandoned, never touched.
  public static func child() {
    FileDescriptors.open.withLockHeld { set in
      for fd in set { _ = Glibc.close(fd) }
      set.removeAll()
    }
    for l in locks.reversed() { l.unlock() }
  }
}
