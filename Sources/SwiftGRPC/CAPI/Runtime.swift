import CSwiftGRPCABI
import Glibc
import SwiftGRPCCore

/// Destroys every live runtime at process exit, so loop threads never run into a host that
/// is tearing itself down.
private let exitHook: Void = {
  atexit {
    let runtimes = handles.withLock { t in
      t.objects.compactMap { id, o -> UInt64? in
        if case .runtime = o { return id } else { return nil }
      }
    }
    for id in runtimes { _ = destroyRuntime(id, atExit: true) }
  }
}()

/// fork(): the handle registry and the core's process-wide locks are held across it, so the
/// child's copies are consistent; in the child, the library's descriptors are closed and every
/// runtime made before fork() is abandoned with its servers, channels and queues (their handles
/// answer SWIFTGRPC_E_BAD_HANDLE; destroying them does nothing). The parent goes on unaffected.
private let forkHook: Void = {
  _ = pthread_atfork(
    {
      handles.lock.lock()
      ForkSupport.prepare()
    },
    {
      ForkSupport.parent()
      handles.lock.unlock()
    },
    {
      ForkSupport.child()
      handles.withLockHeld { $0.abandonAfterFork() }
      handles.lock.unlock()
    })
}()

@_cdecl("swiftgrpc_runtime_create")
public func swiftgrpc_runtime_create(_ loopThreads: UInt32, _ out: UnsafeMutablePointer<UInt64>?)
  -> Int32
{
  guarded { () throws(ABIError) in
    guard let out else { throw ABIError(SWIFTGRPC_E_NULL_ARGUMENT, "out is NULL") }
    guard loopThreads <= 64 else {
      throw ABIError(SWIFTGRPC_E_INVALID_ARGUMENT, "loop_threads \(loopThreads) is above 64")
    }
    _ = exitHook
    _ = forkHook
    do throws(SystemError) {
      let group = try EventLoopGroup(threads: Int(loopThreads))
      out.pointee = register(.runtime(RuntimeObject(group: group)))
    } catch {
      throw ABIError(SWIFTGRPC_E_SYSTEM, error.description)
    }
  }
}

@_cdecl("swiftgrpc_runtime_destroy")
public func swiftgrpc_runtime_destroy(_ runtime: UInt64) -> Int32 {
  guarded { () throws(ABIError) in
    guard try wasIssued(runtime, "runtime") else { return }
    let r = try lookupRuntime(runtime)
    if r.group.isLoopThread {
      throw ABIError(SWIFTGRPC_E_RECURSIVE_CALL, "swiftgrpc_runtime_destroy called from a loop thread")
    }
    _ = destroyRuntime(runtime, atExit: false)
  }
}

/// Destroys a runtime's channels, servers and queues, then its loops.
func destroyRuntime(_ id: UInt64, atExit: Bool) -> Bool {
  guard let r = try? lookupRuntime(id) else { return false }
  if r.group.isLoopThread { return false }  // exit() from inside a host fn: leave it be.
  let children = handles.withLock { t in
    t.objects.filter { $0.value.runtimeID == id }.map { ($0.key, $0.value) }.sorted { $0.0 < $1.0 }
  }
  for (childID, child) in children {
    if case .channel(let c) = child {
      c.channel.destroy()
      _ = handles.withLock { $0.objects.removeValue(forKey: childID) }
    }
  }
  for (childID, child) in children {
    switch child {
    case .server(let s):
      s.server.shutdown(graceNanos: 0)
      _ = handles.withLock { $0.objects.removeValue(forKey: childID) }
    case .queue, .runtime, .channel, .serverCredentials, .channelCredentials, .callCredentials:
      break
    }
  }
  for (childID, child) in children {
    if case .queue(let q) = child {
      q.queue.close()
      _ = handles.withLock { $0.objects.removeValue(forKey: childID) }
    }
  }
  r.group.shutdown()
  _ = handles.withLock { $0.objects.removeValue(forKey: id) }
  return true
}
