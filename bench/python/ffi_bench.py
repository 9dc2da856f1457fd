"""The cost of the host boundary for a Python host, in process, no network, through
swiftgrpc_server_probe (see bench/c/ffi_bench.c): a unary method's CALL event goes to the host,
the host completes it, the library resumes the call; N times one after the other.
    python3 bench/python/ffi_bench.py N
Paths: raw ctypes push (a CFUNCTYPE host fn made with swiftgrpc._native.host_fn, which keeps the
loop thread's Python thread state, completing inside the callback), raw ctypes pull (a
Python thread in swiftgrpc_queue_next), and the swiftgrpc.Server handler (the binding's own
path: its worker threads, context object and handler call). Prints one RESULT {json} per path."""
import ctypes
import json
import os
import sys
import threading
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
import swiftgrpc  # noqa: E402
from swiftgrpc import _native as N  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000


def check(rc, what):
    if rc != 0:
        sys.exit(f"{what}: {rc} {N.swiftgrpc_last_error().decode()}")


def report(path, count, seconds_per_round_trip):
    print("RESULT " + json.dumps({"path": path, "round_trips": count,
                                  "ns_per_round_trip": round(seconds_per_round_trip * 1e9)}), flush=True)


def raw():
    rt, server, queue = N.H(), N.H(), N.H()
    check(N.swiftgrpc_runtime_create(1, ctypes.byref(rt)), "runtime_create")
    check(N.swiftgrpc_server_create(rt.value, ctypes.byref(server)), "server_create")
    check(N.swiftgrpc_queue_create(rt.value, ctypes.byref(queue)), "queue_create")
    s = server.value
    complete = N.swiftgrpc_host_complete

    def on_event(ev, _user_data):
        e = ev.contents
        complete(s, e.token, ctypes.string_at(e.message, e.message_len), e.message_len, 0, None, None, 0)

    host_fn = N.host_fn(on_event)  # referenced until the server is destroyed
    check(N.swiftgrpc_register_host_fn(s, b"/ffi.B/Push", 0, host_fn, None), "register")
    check(N.swiftgrpc_register_host_queue(s, b"/ffi.B/Pull", 0, queue.value), "register")
    check(N.swiftgrpc_server_start(s), "start")

    def puller():
        p = ctypes.c_void_p()
        ev_type = ctypes.POINTER(N.Event)
        while N.swiftgrpc_queue_next(queue.value, -1, ctypes.byref(p)) == 0:
            e = ctypes.cast(p, ev_type).contents
            complete(s, e.token, ctypes.string_at(e.message, e.message_len), e.message_len, 0, None, None, 0)
            N.swiftgrpc_event_free(p)

    t = threading.Thread(target=puller, daemon=True)
    t.start()
    elapsed = ctypes.c_int64()
    for path, method, count in (("raw ctypes push, answered in the host fn", b"/ffi.B/Push", n),
                                ("raw ctypes pull (a Python thread in swiftgrpc_queue_next)", b"/ffi.B/Pull",
                                 max(1, n // 10))):  # a thread hand-off per round trip: fewer
        check(N.swiftgrpc_server_probe(s, method, b"hello", 5, max(1, count // 10), 600000,
                                       ctypes.byref(elapsed)), "probe")
        check(N.swiftgrpc_server_probe(s, method, b"hello", 5, count, 600000, ctypes.byref(elapsed)), "probe")
        report(path, count, elapsed.value / 1e9 / count)
    N.swiftgrpc_queue_shutdown(queue.value)
    t.join()
    check(N.swiftgrpc_server_destroy(s), "server_destroy")
    check(N.swiftgrpc_queue_destroy(queue.value), "queue_destroy")
    check(N.swiftgrpc_runtime_destroy(rt.value), "runtime_destroy")
    del host_fn


def binding():
    server = swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((swiftgrpc.method_handlers_generic_handler(
        "ffi.B", {"Get": swiftgrpc.unary_unary_rpc_method_handler(lambda request, context: request)}),))
    server.start()
    server.probe_host("/ffi.B/Get", b"hello", max(1, n // 100), timeout=600)
    count = max(1, n // 10)
    report("swiftgrpc.Server handler (the binding's path)", count,
           server.probe_host("/ffi.B/Get", b"hello", count, timeout=600))
    server.stop(None)


raw()
binding()
