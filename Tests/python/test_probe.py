"""Server.probe_host (swiftgrpc_server_probe): the host boundary measured in process. The handler
really runs once per round trip, with the request and a context; bad use is refused clearly."""
import asyncio
import threading
from concurrent import futures

import pytest

import swiftgrpc
import swiftgrpc.aio


def echo_server(handler, *, start=True, mod=swiftgrpc):
    handlers = {"Get": mod.unary_unary_rpc_method_handler(handler),
                "Stream": mod.unary_stream_rpc_method_handler(lambda r, c: iter([r]))}
    server = mod.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((mod.method_handlers_generic_handler("probe.P", handlers),))
    if start:
        server.start()
    return server


def test_probe_runs_the_handler_once_per_round_trip():
    seen = []

    def handler(request, context):
        seen.append((request, context.peer()))
        return request

    server = echo_server(handler)
    try:
        per_call = server.probe_host("/probe.P/Get", b"ping", iterations=200, timeout=30)
        assert 0 < per_call < 1.0
        assert seen == [(b"ping", "inproc")] * 200
    finally:
        server.stop(None)


def test_probe_refuses_bad_use():
    server = echo_server(lambda r, c: r, start=False)
    with pytest.raises(swiftgrpc.UsageError, match="not running"):
        server.probe_host("/probe.P/Get", b"x")
    server.start()
    try:
        with pytest.raises(ValueError, match="not registered"):
            server.probe_host("/probe.P/Nope", b"x")
        with pytest.raises(swiftgrpc.UsageError, match="only unary"):
            server.probe_host("/probe.P/Stream", b"x")
        with pytest.raises(ValueError):
            server.probe_host("/probe.P/Get", b"x", iterations=0)
        with pytest.raises(TypeError):
            server.probe_host("/probe.P/Get", "not bytes")
        assert server.probe_host("/probe.P/Get", b"x") > 0  # nothing broken by the refusals
    finally:
        server.stop(None)


def test_probe_times_out_and_cancels_the_waiting_handler():
    release, cancelled = threading.Event(), threading.Event()

    def handler(request, context):
        context.add_callback(cancelled.set)
        release.wait(10)
        return request

    server = echo_server(handler)
    try:
        with pytest.raises(TimeoutError):
            server.probe_host("/probe.P/Get", b"x", timeout=0.1)
        assert cancelled.wait(10), "the handler's call was not cancelled"
    finally:
        release.set()
        server.stop(None)


def test_probe_on_the_asyncio_server():
    async def main():
        async def get(request, context):
            await asyncio.sleep(0)
            return request + b"!"

        server = swiftgrpc.aio.server()
        server.add_generic_rpc_handlers((swiftgrpc.method_handlers_generic_handler(
            "probe.P", {"Get": swiftgrpc.unary_unary_rpc_method_handler(get)}),))
        await server.start()
        try:
            assert await server.probe_host("/probe.P/Get", b"x", iterations=100, timeout=30) > 0
        finally:
            await server.stop(None)

    asyncio.run(main())
