"""The swiftgrpc server, called by grpcio clients: exception mapping, context API, limits,
shutdown, bad input."""
import socket
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest

import svc_pb2
import svc_pb2_grpc
import swiftgrpc
from conftest import make_server

Msg = svc_pb2.Msg


@pytest.fixture
def grpc_stub(swift_target):
    with grpc.insecure_channel(swift_target) as ch:
        yield svc_pb2_grpc.SvcStub(ch)


@pytest.mark.parametrize("exc", ["ValueError", "UnicodeDecodeError", "PermissionError",
                                 "NotImplementedError", "TimeoutError", "KeyError", "RuntimeError"])
def test_handler_exceptions_end_unknown_as_in_grpcio(grpc_stub, exc):
    # grpcio maps no exception type to a code: each is UNKNOWN "Exception calling application"
    with pytest.raises(grpc.RpcError) as e:
        grpc_stub.Unary(Msg(text=f"raise:{exc}"), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details().startswith("Exception calling application: ")


def test_server_keeps_serving_after_exceptions(grpc_stub):
    for _ in range(20):
        with pytest.raises(grpc.RpcError):
            grpc_stub.Unary(Msg(text="raise:RuntimeError"))
    assert grpc_stub.Unary(Msg(text="echo")).text == "echo"


def test_generated_servicer_default_is_unimplemented():
    server, target = make_server("swiftgrpc", svc_pb2_grpc.SvcServicer())
    try:
        with grpc.insecure_channel(target) as ch:
            with pytest.raises(grpc.RpcError) as e:
                svc_pb2_grpc.SvcStub(ch).Unary(Msg())
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert e.value.details() == "Method not implemented!"
    finally:
        server.stop(None)


def _raw_server(handlers, max_workers=4, **kw):
    s = swiftgrpc.server(max_workers=max_workers, **kw)
    s.add_generic_rpc_handlers([swiftgrpc.method_handlers_generic_handler("raw.S", handlers)])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    return s, f"127.0.0.1:{port}"


def test_bytes_handlers_without_protobuf():
    s, target = _raw_server({
        "Echo": swiftgrpc.unary_unary_rpc_method_handler(lambda req, ctx: req[::-1]),
        "Str": swiftgrpc.unary_unary_rpc_method_handler(lambda req, ctx: "not bytes"),
    })
    try:
        with grpc.insecure_channel(target) as ch:
            assert ch.unary_unary("/raw.S/Echo")(b"abc") == b"cba"
            with pytest.raises(grpc.RpcError) as e:
                ch.unary_unary("/raw.S/Str")(b"")
            assert e.value.code() == grpc.StatusCode.INTERNAL
            assert "must be bytes" in e.value.details()
    finally:
        s.stop(None)


def test_invalid_trailing_metadata_is_reported_not_crashing():
    def bad_key(req, ctx):
        ctx.set_trailing_metadata([("Bad Key", "v")])
        return b"x"

    def bad_type(req, ctx):
        ctx.set_trailing_metadata([("k", 12)])

    s, target = _raw_server({"BadKey": swiftgrpc.unary_unary_rpc_method_handler(bad_key),
                             "BadType": swiftgrpc.unary_unary_rpc_method_handler(bad_type)})
    try:
        with grpc.insecure_channel(target) as ch:
            with pytest.raises(grpc.RpcError) as e:
                ch.unary_unary("/raw.S/BadKey")(b"")
            assert e.value.code() == grpc.StatusCode.INTERNAL
            with pytest.raises(grpc.RpcError) as e:  # raised in the handler (grpcio's call hangs)
                ch.unary_unary("/raw.S/BadType")(b"", timeout=10)
            assert e.value.code() == grpc.StatusCode.UNKNOWN
            assert "must be str or bytes" in e.value.details()
    finally:
        s.stop(None)


def test_max_workers_bounds_concurrency_and_cancellation_still_arrives():
    running = []
    peak = [0]
    lock = threading.Lock()
    cancelled = threading.Event()

    def slow(req, ctx):
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        try:
            if req == b"wait-cancel":
                ctx.add_callback(cancelled.set)
                cancelled.wait(10)
            else:
                time.sleep(0.2)
            return req
        finally:
            with lock:
                running.pop()

    s, target = _raw_server({"Slow": swiftgrpc.unary_unary_rpc_method_handler(slow)}, max_workers=3)
    try:
        with grpc.insecure_channel(target) as ch:
            call = ch.unary_unary("/raw.S/Slow")
            with futures.ThreadPoolExecutor(12) as pool:
                results = list(pool.map(lambda i: call(b"%d" % i, timeout=20), range(12)))
            assert results == [b"%d" % i for i in range(12)]
            assert peak[0] == 3
            # all workers busy: a cancelled call still reaches its handler's callbacks
            f = call.future(b"wait-cancel")
            busy = [call.future(b"x") for _ in range(3)]
            time.sleep(0.05)
            f.cancel()
            assert cancelled.wait(5)
            for b in busy:
                b.result(timeout=10)
    finally:
        s.stop(None)


def test_stop_with_grace_lets_calls_finish_then_refuses():
    def slow(req, ctx):
        time.sleep(0.3)
        return b"done"

    s, target = _raw_server({"Slow": swiftgrpc.unary_unary_rpc_method_handler(slow)})
    with grpc.insecure_channel(target) as ch:
        f = ch.unary_unary("/raw.S/Slow").future(b"")
        time.sleep(0.1)
        stopped = s.stop(5)
        assert f.result(timeout=5) == b"done"
        assert stopped.wait(10)
        assert s.wait_for_termination(0) is False
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/raw.S/Slow")(b"", timeout=2)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_stop_without_grace_cancels_calls_in_flight():
    ended = threading.Event()

    def slow(req, ctx):
        ctx.add_callback(ended.set)
        ended.wait(10)
        return b"late"

    s, target = _raw_server({"Slow": swiftgrpc.unary_unary_rpc_method_handler(slow)})
    with grpc.insecure_channel(target) as ch:
        f = ch.unary_unary("/raw.S/Slow").future(b"")
        time.sleep(0.1)
        s.stop(None).wait(10)
        assert ended.is_set()
        with pytest.raises(grpc.RpcError) as e:
            f.result(timeout=5)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def test_bad_input_is_refused_clearly():
    s = swiftgrpc.server(max_workers=2)
    with pytest.raises(TypeError, match="address must be str"):
        s.add_insecure_port(50051)
    with pytest.raises(ValueError):
        s.add_insecure_port("not an address")
    with pytest.raises(TypeError, match="does not list its methods"):
        s.add_generic_rpc_handlers([object()])
    with pytest.raises(TypeError, match="not an RpcMethodHandler"):
        s.add_method("/a.B/C", object())
    h = swiftgrpc.unary_unary_rpc_method_handler(lambda r, c: r)
    s.add_method("/a.B/C", h)
    with pytest.raises(ValueError, match="already registered"):
        s.add_method("/a.B/C", h)
    with pytest.raises(ValueError):
        swiftgrpc.server(options=[("grpc.max_receive_message_length", -5)])
    s.add_insecure_port("127.0.0.1:0")
    s.start()
    with pytest.raises(swiftgrpc.UsageError):
        s.start()
    with pytest.raises(swiftgrpc.UsageError):
        s.add_method("/a.B/D", h)
    with pytest.raises(TypeError):
        s.add_secure_port("127.0.0.1:0", None)
    s.stop(None).wait(5)
    with pytest.raises(swiftgrpc.UsageError):
        s.start()


def test_context_abort_rejects_ok_and_bad_codes():
    seen = {}

    def h(req, ctx):
        for arg in (grpc.StatusCode.OK, 99, "x"):
            try:
                ctx.abort(arg, "no")
            except (ValueError, TypeError) as e:
                seen[repr(arg)] = type(e).__name__
        return b"ok"

    s, target = _raw_server({"H": swiftgrpc.unary_unary_rpc_method_handler(h)})
    try:
        with grpc.insecure_channel(target) as ch:
            assert ch.unary_unary("/raw.S/H")(b"") == b"ok"
        assert sorted(seen.values()) == ["TypeError", "ValueError", "ValueError"]
    finally:
        s.stop(None)


def test_max_receive_message_length():
    s, target = _raw_server({"Echo": swiftgrpc.unary_unary_rpc_method_handler(lambda r, c: r)},
                            options=[("grpc.max_receive_message_length", 1024)])
    try:
        with grpc.insecure_channel(target) as ch:
            assert ch.unary_unary("/raw.S/Echo")(b"a" * 1024) == b"a" * 1024
            with pytest.raises(grpc.RpcError) as e:
                ch.unary_unary("/raw.S/Echo")(b"a" * 1025)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        s.stop(None)


def test_unix_socket(tmp_path):
    s = swiftgrpc.server(max_workers=2)
    s.add_method("/raw.S/Echo", swiftgrpc.unary_unary_rpc_method_handler(lambda r, c: r))
    path = tmp_path / "sock"
    assert s.add_insecure_port(f"unix:{path}") == 0
    s.start()
    try:
        with grpc.insecure_channel(f"unix:{path}") as ch:
            assert ch.unary_unary("/raw.S/Echo")(b"u") == b"u"
        with swiftgrpc.insecure_channel(f"unix:{path}") as ch:
            assert ch.unary_unary("/raw.S/Echo")(b"v") == b"v"
    finally:
        s.stop(None)


def test_every_cancellation_reaches_its_handler():
    """Calls cancelled by the client just after they start: each one that reaches a handler has
    its context ended (its callback runs), whichever worker takes the CANCELLED. Before per-call
    tags a CANCELLED taken while another worker was registering the call could be lost, and the
    handler then waited forever."""
    started, ended = [], []
    changed = threading.Condition()

    def wait(req, ctx):
        done = threading.Event()
        if not ctx.add_callback(done.set):  # the call had ended already
            done.set()
        with changed:
            started.append(done)
        if done.wait(20):
            with changed:
                ended.append(done)
                changed.notify_all()
        return iter(())

    s, target = _raw_server({"Wait": swiftgrpc.unary_stream_rpc_method_handler(wait)}, max_workers=64)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the GIL changes hands between almost any two bytecodes
    try:
        with grpc.insecure_channel(target) as ch:
            rpc = ch.unary_stream("/raw.S/Wait")
            for i in range(400):
                call = rpc(b"")
                for _ in range(i % 7 * 50):  # spread the cancel over the server's hand-off
                    pass
                call.cancel()
        with changed:
            changed.wait_for(lambda: len(ended) == len(started), timeout=20)
            assert started, "no call reached a handler"
            assert len(ended) == len(started), f"{len(started) - len(ended)} cancellations lost"
    finally:
        sys.setswitchinterval(interval)
        s.stop(None).wait()


def test_a_slow_handler_does_not_hold_the_calls_that_arrived_with_it():
    # One write carries three calls whose handlers block and five quick ones: the worker that
    # takes them as one batch runs the first; the others must not wait behind it, nor behind
    # the second or the third: each blocked handler gets a worker of its own (woken one after
    # the other while calls wait), and the quick ones are answered meanwhile.
    import h2.config
    import h2.connection
    import h2.events
    release = threading.Event()
    blocked = threading.Semaphore(0)

    def block(req, ctx):
        blocked.release()
        release.wait(20)
        return b"late"

    s, target = _raw_server({"Block": swiftgrpc.unary_unary_rpc_method_handler(block),
                             "Quick": swiftgrpc.unary_unary_rpc_method_handler(lambda r, c: r)})
    host, port = target.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        streams = {}
        for i, method in enumerate(["Block"] * 3 + ["Quick"] * 5):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                    (":path", f"/raw.S/{method}"), (":authority", target),
                                    ("content-type", "application/grpc"), ("te", "trailers")])
            conn.send_data(sid, b"\x00\x00\x00\x00\x01" + bytes([48 + i]), end_stream=True)
            streams[sid] = method
        sock.sendall(conn.data_to_send())  # every request in one write
        status = {}
        deadline = time.monotonic() + 10
        quick = {sid for sid, m in streams.items() if m == "Quick"}
        while not quick <= status.keys() and time.monotonic() < deadline:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.TrailersReceived):
                    status[ev.stream_id] = dict(ev.headers).get(b"grpc-status")
            sock.sendall(conn.data_to_send())
        assert {sid: status.get(sid) for sid in quick} == {sid: b"0" for sid in quick}
        # the three blocking handlers run at once (max_workers 4), each on a worker of its own
        assert all(blocked.acquire(timeout=10) for _ in range(3))
        assert not {1, 3, 5} & status.keys()  # still running
        release.set()
        while not {1, 3, 5} <= status.keys() and time.monotonic() < deadline + 10:
            for ev in conn.receive_data(sock.recv(65536)):
                if isinstance(ev, h2.events.TrailersReceived):
                    status[ev.stream_id] = dict(ev.headers).get(b"grpc-status")
        assert [status.get(sid) for sid in (1, 3, 5)] == [b"0"] * 3
    finally:
        release.set()
        sock.close()
        s.stop(None)
