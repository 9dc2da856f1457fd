"""The raw ABI from ctypes, as a host that binds it itself would use it: host functions made with
swiftgrpc._native.host_fn and host_batch_fn answering grpcio clients over a real socket."""
import ctypes
import threading
from concurrent import futures

import grpc

from swiftgrpc import _native as N


class RawServer:
    """A library server of its own runtime, one loop thread, listening on loopback."""

    def __init__(self):
        rt, srv = N.H(), N.H()
        assert N.swiftgrpc_runtime_create(1, ctypes.byref(rt)) == 0
        assert N.swiftgrpc_server_create(rt.value, ctypes.byref(srv)) == 0
        self.rt, self.handle = rt.value, srv.value

    def start(self):
        port = ctypes.c_int()
        assert N.swiftgrpc_server_listen(self.handle, b"127.0.0.1:0", ctypes.byref(port)) == 0
        assert N.swiftgrpc_server_start(self.handle) == 0
        return f"127.0.0.1:{port.value}"

    def close(self):
        assert N.swiftgrpc_server_destroy(self.handle) == 0
        assert N.swiftgrpc_runtime_destroy(self.rt) == 0


def test_batch_host_fn_answers_every_call_of_a_burst():
    """40 calls at once: each CALL reaches the batch fn exactly once and is answered inside it;
    the batches hold them in order, several per call of the fn once the loop sees them together."""
    server = RawServer()
    batches, tokens = [], []

    def on_batch(events, count, user_data):
        assert user_data == 0x77
        batches.append(count)
        for i in range(count):
            e = events[i].contents
            if e.type == N.EVENT_CALL:
                tokens.append(e.token)
                body = ctypes.string_at(e.message, e.message_len)
                N.swiftgrpc_host_complete(server.handle, e.token, body[::-1], len(body), 0, None, None, 0)

    fn = N.host_batch_fn(on_batch)  # referenced until the server is destroyed
    assert N.swiftgrpc_register_host_batch_fn(server.handle, b"/raw.B/Rev", N.KIND_UNARY, fn,
                                              ctypes.c_void_p(0x77)) == 0
    assert N.swiftgrpc_register_host_batch_fn(server.handle, b"/raw.B/Rev", N.KIND_UNARY, fn, None) \
        == N.E_ALREADY_EXISTS
    target = server.start()
    try:
        with grpc.insecure_channel(target) as ch:
            rev = ch.unary_unary("/raw.B/Rev")
            pending = [rev.future(f"m{i}".encode(), timeout=10) for i in range(40)]
            assert [p.result() for p in pending] == [f"m{i}".encode()[::-1] for i in range(40)]
        assert len(tokens) == 40 and len(set(tokens)) == 40
        assert sum(batches) >= 40 and all(n >= 1 for n in batches)
    finally:
        server.close()
    del fn


def test_host_fn_from_a_loop_thread_keeps_working():
    """A host fn made with host_fn answers many calls from the loop thread (its Python thread
    state kept between calls), and each call gets its own answer."""
    server = RawServer()
    seen = []

    def on_event(ev, _user_data):
        e = ev.contents
        if e.type == N.EVENT_CALL:
            seen.append(threading.get_ident())
            N.swiftgrpc_host_complete(server.handle, e.token, ctypes.string_at(e.message, e.message_len),
                                      e.message_len, 0, None, None, 0)

    fn = N.host_fn(on_event)
    assert N.swiftgrpc_register_host_fn(server.handle, b"/raw.B/Echo", N.KIND_UNARY, fn, None) == 0
    target = server.start()
    try:
        with grpc.insecure_channel(target) as ch:
            echo = ch.unary_unary("/raw.B/Echo")
            with futures.ThreadPoolExecutor(4) as pool:
                got = list(pool.map(lambda i: echo(str(i).encode(), timeout=10), range(200)))
        assert got == [str(i).encode() for i in range(200)]
        assert len(seen) == 200 and len(set(seen)) == 1  # the one loop thread
        assert threading.get_ident() not in seen
    finally:
        server.close()
    del fn


def test_now_ns_reads_the_library_clock():
    """The binding reads deadlines' clock with time.monotonic_ns: it must be the library's."""
    for _ in range(100):
        before = N.now_ns()
        lib = N.swiftgrpc_now_ns()
        after = N.now_ns()
        assert before <= lib <= after


def test_queue_fd_signals_an_event_loop():
    """swiftgrpc_queue_fd from Python: readable once a CLIENT_STATUS lands, clear after a read."""
    import os
    import select
    rt, q, ch, call = N.H(), N.H(), N.H(), N.H()
    assert N.swiftgrpc_runtime_create(1, ctypes.byref(rt)) == 0
    assert N.swiftgrpc_queue_create(rt.value, ctypes.byref(q)) == 0
    fd = ctypes.c_int(-1)
    assert N.swiftgrpc_queue_fd(q.value, None) == N.E_NULL_ARGUMENT
    assert N.swiftgrpc_queue_fd(rt.value, ctypes.byref(fd)) == N.E_BAD_HANDLE
    assert fd.value == -1
    assert N.swiftgrpc_queue_fd(q.value, ctypes.byref(fd)) == 0
    assert select.select([fd.value], [], [], 0)[0] == []
    assert N.swiftgrpc_channel_create(rt.value, b"127.0.0.1:1", None, 0, ctypes.byref(ch)) == 0
    assert N.swiftgrpc_client_call_start(ch.value, b"/a.B/C", N.KIND_UNARY, None, 0, b"x", 1,
                                         N.DEADLINE_NONE, 0, q.value, N.HOST_FN(0), None,
                                         ctypes.byref(call)) == 0
    assert N.swiftgrpc_channel_destroy(ch.value) == 0  # the call's STATUS is queued
    assert select.select([fd.value], [], [], 5)[0] == [fd.value]
    assert os.read(fd.value, 8) == (1).to_bytes(8, "little")
    assert select.select([fd.value], [], [], 0)[0] == []
    from swiftgrpc._common import Batches
    got = Batches(q.value, poll=True).next(0)
    assert [e.type for e in got] == [N.EVENT_CLIENT_STATUS]
    assert N.swiftgrpc_queue_destroy(q.value) == 0
    assert N.swiftgrpc_runtime_destroy(rt.value) == 0


def test_per_call_functions_take_whole_64_bit_integers():
    """The per-call functions' integer arguments (declared as words: _native._WORD_ARGS) reach
    the library whole: a handle or token 2**32 past a live one is refused, never taken for the
    one it would truncate to; the real ones work."""
    server = RawServer()
    q = N.H()
    assert N.swiftgrpc_queue_create(server.rt, ctypes.byref(q)) == 0
    assert N.swiftgrpc_register_host_queue(server.handle, b"/raw.W/Echo", N.KIND_UNARY, q.value) == 0
    target = server.start()
    from swiftgrpc._common import Batches
    try:
        with grpc.insecure_channel(target) as ch:
            pending = ch.unary_unary("/raw.W/Echo").future(b"whole", timeout=10)
            got = Batches(q.value).next(10_000)
            assert [e.type for e in got] == [N.EVENT_CALL] and got[0].message == b"whole"
            token, far = got[0].token, 1 << 32
            assert N.swiftgrpc_call_set_tag(server.handle, token + far, 7) == N.E_UNKNOWN_TOKEN
            assert N.swiftgrpc_call_read(server.handle + far, token) == N.E_BAD_HANDLE
            assert f"{server.handle + far} was never issued" in N.last_error()
            assert N.swiftgrpc_host_complete(server.handle + far, token, b"x", 1, 0, None, None, 0) \
                == N.E_BAD_HANDLE
            assert N.swiftgrpc_call_set_tag(server.handle, token, 7) == 0
            assert N.swiftgrpc_host_complete(server.handle, token, b"whole", 5, 0, None, None, 0) == 0
            assert pending.result() == b"whole"
    finally:
        server.close()
        assert N.swiftgrpc_queue_destroy(q.value) == 0
