"""swiftgrpc.aio against grpc.aio, both directions (and with itself), through generated stubs:
all four kinds, statuses, deadlines, cancellation propagating both ways."""
import asyncio
import time

import grpc
import grpc.aio
import pytest

import svc_pb2
import svc_pb2_grpc
import swiftgrpc.aio
from servicer import LOG, AsyncServicer, log_event

Msg = svc_pb2.Msg
COMBOS = [("swiftgrpc", "grpcio"), ("grpcio", "swiftgrpc"), ("swiftgrpc", "swiftgrpc")]


def aio_mod(impl):
    return grpc.aio if impl == "grpcio" else swiftgrpc.aio


async def serve_and_call(server_impl, client_impl, body):
    server = aio_mod(server_impl).server()
    svc_pb2_grpc.add_SvcServicer_to_server(AsyncServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with aio_mod(client_impl).insecure_channel(f"127.0.0.1:{port}") as ch:
            await body(svc_pb2_grpc.SvcStub(ch))
    finally:
        await server.stop(None)


def run(server_impl, client_impl, body):
    asyncio.run(serve_and_call(server_impl, client_impl, body))


@pytest.mark.parametrize("server_impl,client_impl", COMBOS)
def test_four_kinds(server_impl, client_impl):
    async def body(stub):
        call = stub.Unary(Msg(text="echo", data=b"d"), metadata=[("x-a", "1"), ("x-b-bin", b"\x00")])
        resp = await call
        assert resp.data == b"d"
        trailers = [tuple(m) for m in await call.trailing_metadata() if m[0].startswith("x-")]
        assert trailers == [("x-a", "1"), ("x-b-bin", b"\x00")]
        assert await call.code() == grpc.StatusCode.OK
        assert [m.text async for m in stub.ServerStream(Msg(n=20))] == [str(i) for i in range(20)]

        async def agen():
            for t in "abc":
                yield Msg(text=t)
        assert (await stub.ClientStream(agen())).text == "a,b,c"
        assert (await stub.ClientStream(iter([Msg(text="x"), Msg(text="y")]))).text == "x,y"
        assert [m.text async for m in stub.Bidi(agen())] == ["A", "B", "C"]
        results = await asyncio.gather(*[stub.Unary(Msg(text="echo", data=b"%d" % i)) for i in range(100)])
        assert [r.data for r in results] == [b"%d" % i for i in range(100)]
    run(server_impl, client_impl, body)


@pytest.mark.parametrize("server_impl,client_impl", COMBOS)
def test_read_write_api(server_impl, client_impl):
    async def body(stub):
        call = stub.Bidi()
        for t in ("p", "q"):
            await call.write(Msg(text=t))
            assert (await call.read()).text == t.upper()
        await call.done_writing()
        assert await call.read() is (grpc.aio.EOF if client_impl == "grpcio" else swiftgrpc.aio.EOF)
    run(server_impl, client_impl, body)


@pytest.mark.parametrize("server_impl,client_impl", COMBOS)
def test_statuses_and_exceptions(server_impl, client_impl):
    async def body(stub):
        with pytest.raises(grpc.RpcError) as e:
            await stub.Unary(Msg(text="status:OUT_OF_RANGE:ünï ✓"))
        assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE and e.value.details() == "ünï ✓"
        with pytest.raises(grpc.RpcError) as e:
            await stub.Unary(Msg(text="raise:PermissionError"))
        # as grpcio's asyncio server answers
        assert e.value.code() == grpc.StatusCode.UNKNOWN
        assert e.value.details() == "Unexpected <class 'PermissionError'>: raised on purpose"
    run(server_impl, client_impl, body)


@pytest.mark.parametrize("server_impl,client_impl", COMBOS)
def test_deadline_cancels_the_handler(server_impl, client_impl):
    key = f"aio-deadline-{server_impl}-{client_impl}-{time.monotonic_ns()}"

    async def body(stub):
        with pytest.raises(grpc.RpcError) as e:
            await stub.Unary(Msg(text=f"sleep:10:{key}"), timeout=0.3)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, log_event(key).wait, 5)
        assert LOG[key][0] == "cancelled"
    run(server_impl, client_impl, body)


@pytest.mark.parametrize("server_impl,client_impl", COMBOS)
def test_task_cancellation_cancels_the_call_and_the_handler(server_impl, client_impl):
    key = f"aio-cancel-{server_impl}-{client_impl}-{time.monotonic_ns()}"

    async def body(stub):
        task = asyncio.ensure_future(stub.Unary(Msg(text=f"sleep:10:{key}")))
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, log_event(key + ":started").wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, log_event(key).wait, 5)
        assert LOG[key][0] == "cancelled"
    run(server_impl, client_impl, body)


def test_call_cancel_on_stream():
    async def body(stub):
        call = stub.ServerStream(Msg(n=100000, data=b"x" * 1000))
        assert (await call.read()).text == "0"
        assert call.cancel()
        assert call.cancelled() and call.done()
        with pytest.raises(asyncio.CancelledError):  # as grpc.aio's read() after cancel()
            while True:
                m = await call.read()
                if m is swiftgrpc.aio.EOF:
                    break
        assert await call.code() == grpc.StatusCode.CANCELLED
    run("grpcio", "swiftgrpc", body)


def test_aio_bad_input():
    async def body(stub):
        with pytest.raises(TypeError):
            stub.ClientStream(42)
        with pytest.raises(ValueError):
            stub.Unary(Msg(), timeout=0)
        with pytest.raises(ValueError):
            stub.Unary(Msg(), metadata=[("Bad", "x")])
    run("grpcio", "swiftgrpc", body)


def test_invalid_trailing_metadata_still_answers():
    """Trailers the library refuses must not leave the client waiting: INTERNAL, at once."""
    async def bad(req, ctx):
        ctx.set_trailing_metadata([("Bad Key", "v")])
        return b"x"

    async def main():
        server = swiftgrpc.aio.server()
        server.add_generic_rpc_handlers([swiftgrpc.aio.method_handlers_generic_handler(
            "raw.S", {"Bad": swiftgrpc.aio.unary_unary_rpc_method_handler(bad)})])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                with pytest.raises(grpc.RpcError) as e:
                    await ch.unary_unary("/raw.S/Bad")(b"", timeout=5)
                assert e.value.code() == grpc.StatusCode.INTERNAL
        finally:
            await server.stop(None)
    asyncio.run(main())


class _NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop that cannot watch descriptors (as some third-party loops): add_reader refused."""

    def add_reader(self, fd, callback, *args):
        raise NotImplementedError("no readers here")


@pytest.mark.parametrize("server_impl,client_impl", [("swiftgrpc", "grpcio"), ("grpcio", "swiftgrpc"),
                                                     ("swiftgrpc", "swiftgrpc")])
def test_events_reach_the_loop_without_add_reader(server_impl, client_impl):
    """The pump-thread fallback serves and calls as the descriptor path does, and closes clean."""
    async def body(stub):
        results = await asyncio.gather(*[stub.Unary(Msg(text="echo", data=b"%d" % i)) for i in range(50)])
        assert [r.data for r in results] == [b"%d" % i for i in range(50)]
        assert [m.text async for m in stub.ServerStream(Msg(n=5))] == [str(i) for i in range(5)]
    loop = _NoReaderLoop()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve_and_call(server_impl, client_impl, body))
        threads = [t.name for t in __import__("threading").enumerate()]
        assert not [n for n in threads if "swiftgrpc-aio" in n]  # the pumps ended
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_the_loop_thread_takes_the_events():
    """With a selector loop no pump thread runs: events are taken on the loop's own thread."""
    import threading

    async def body(stub):
        assert (await stub.Unary(Msg(text="echo", data=b"x"))).data == b"x"
        assert not [t.name for t in threading.enumerate() if "swiftgrpc-aio" in t.name]
    run("swiftgrpc", "swiftgrpc", body)


def test_import_swiftgrpc_makes_aio_available():
    # As grpc.aio after `import grpc`: code written for grpcio names swiftgrpc.aio without
    # importing it (in a fresh interpreter: this one imported it already).
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    run = subprocess.run([sys.executable, "-c", "import swiftgrpc; print(swiftgrpc.aio.EOF is not None, "
                          "callable(swiftgrpc.aio.server), callable(swiftgrpc.aio.insecure_channel))"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.stdout.strip() == "True True True", run.stderr


def test_a_shutdown_right_after_an_event_still_ends_the_queue_reader():
    """A queue's readiness descriptor is signalled once for a STATUS and once for the shutdown
    right after it; the reader's first look clears both and takes the STATUS. It must still see
    the shutdown (no signal follows one): a closing channel or stopping server waited forever
    on it before."""
    import ctypes
    from swiftgrpc import _native as N
    from swiftgrpc.aio import _delivered_all, _QueueReader

    async def main():
        rt, q, ch, call = N.H(), N.H(), N.H(), N.H()
        assert N.swiftgrpc_runtime_create(1, ctypes.byref(rt)) == 0
        assert N.swiftgrpc_queue_create(rt.value, ctypes.byref(q)) == 0
        got = []
        reader = _QueueReader(asyncio.get_running_loop(), q.value, got.extend)
        assert N.swiftgrpc_channel_create(rt.value, b"127.0.0.1:1", None, 0, ctypes.byref(ch)) == 0
        assert N.swiftgrpc_client_call_start(ch.value, b"/a.B/C", N.KIND_UNARY, None, 0, b"x", 1,
                                             N.DEADLINE_NONE, 0, q.value, N.HOST_FN(0), None,
                                             ctypes.byref(call)) == 0
        assert N.swiftgrpc_channel_destroy(ch.value) == 0  # the STATUS is queued: signalled
        assert N.swiftgrpc_queue_shutdown(q.value) == 0  # signalled again, before the loop looks
        try:
            await asyncio.wait_for(_delivered_all(reader), 10)
        finally:
            assert N.swiftgrpc_queue_destroy(q.value) == 0
            assert N.swiftgrpc_runtime_destroy(rt.value) == 0
        assert [e.type for e in got] == [N.EVENT_CLIENT_STATUS]

    asyncio.run(main())
