"""The built-in health service (grpc.health.v1.Health) of a swiftgrpc server, called by
grpcio-health-checking's client stub as Kubernetes probes and grpc_health_probe call it: Check
and Watch, statuses set from Python, NOT_SERVING on a graceful shutdown while calls drain, and
a malformed request refused."""
import queue
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import svc_pb2
import svc_pb2_grpc
import swiftgrpc
import swiftgrpc.aio
import swiftgrpc.health
from servicer import Servicer, started_event

Req, Resp = health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse


def healthy_server():
    server = swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=8))
    svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), server)
    health = swiftgrpc.health.enable(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, health, f"127.0.0.1:{port}"


def test_statuses_equal_grpcios():
    for name in ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"):
        assert getattr(swiftgrpc.health, name) == getattr(Resp, name)


def test_check_answers_what_was_set():
    server, health, target = healthy_server()
    try:
        with grpc.insecure_channel(target) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            assert stub.Check(Req(service=""), timeout=10).status == Resp.SERVING
            with pytest.raises(grpc.RpcError) as err:
                stub.Check(Req(service="my.Service"), timeout=10)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            health.set("my.Service", Resp.NOT_SERVING)
            assert stub.Check(Req(service="my.Service"), timeout=10).status == Resp.NOT_SERVING
            health.set("my.Service", swiftgrpc.health.SERVING)
            assert stub.Check(Req(service="my.Service"), timeout=10).status == Resp.SERVING
            health.set("", Resp.NOT_SERVING)
            assert stub.Check(Req(), timeout=10).status == Resp.NOT_SERVING
            # The server's own methods are served alongside.
            assert svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo", data=b"x"), timeout=10).data == b"x"
    finally:
        server.stop(None).wait(10)


def test_watch_streams_every_change():
    server, health, target = healthy_server()
    try:
        with grpc.insecure_channel(target) as ch:
            stream = health_pb2_grpc.HealthStub(ch).Watch(Req(service="w"), timeout=20)
            seen = queue.SimpleQueue()
            def read():
                try:
                    for r in stream:
                        seen.put(r.status)
                except grpc.RpcError:
                    pass  # cancelled at the end

            threading.Thread(target=read, daemon=True).start()
            assert seen.get(timeout=10) == Resp.SERVICE_UNKNOWN  # never set
            health.set("w", Resp.SERVING)
            assert seen.get(timeout=10) == Resp.SERVING
            health.set("w", Resp.NOT_SERVING)
            assert seen.get(timeout=10) == Resp.NOT_SERVING
            # Many changes at once: the watcher ends up with the last (changes between sends
            # coalesce, as a watcher only needs the current status).
            for _ in range(50):
                health.set("w", Resp.SERVING)
                health.set("w", Resp.NOT_SERVING)
            health.set("w", Resp.SERVING)
            last = None
            deadline = time.monotonic() + 10
            while last != Resp.SERVING and time.monotonic() < deadline:
                last = seen.get(timeout=10)
            assert last == Resp.SERVING
            stream.cancel()
    finally:
        server.stop(None).wait(10)


def test_graceful_shutdown_says_not_serving_first_while_calls_drain():
    key = f"health-drain-{time.monotonic_ns()}"
    server, health, target = healthy_server()
    with grpc.insecure_channel(target) as ch:
        stream = health_pb2_grpc.HealthStub(ch).Watch(Req(service=""), timeout=20)
        assert next(stream).status == Resp.SERVING
        slow = svc_pb2_grpc.SvcStub(ch).Unary.future(svc_pb2.Msg(text=f"sleep:0.5:{key}"), timeout=10)
        assert started_event(key).wait(10)  # in flight when the shutdown begins
        stopped = server.stop(5)
        assert next(stream).status == Resp.NOT_SERVING
        with pytest.raises(grpc.RpcError) as err:
            next(stream)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        health.set("", Resp.SERVING)  # ignored while stopping, as grpcio's servicer
        assert slow.result(timeout=10).text == "slept"  # the call in flight still finished
        assert stopped.wait(10)


def test_an_asyncio_server_serves_it_too():
    import asyncio

    async def body():
        server = swiftgrpc.aio.server()
        health = swiftgrpc.health.enable(server)
        health.set("a", Resp.SERVING)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                reply = await health_pb2_grpc.HealthStub(ch).Check(Req(service="a"), timeout=10)
                assert reply.status == Resp.SERVING
        finally:
            await server.stop(None)

    asyncio.run(body())


def test_misuse_is_refused():
    server = swiftgrpc.server()
    health = swiftgrpc.health.enable(server)
    assert swiftgrpc.health.enable(server) is not None  # idempotent
    with pytest.raises(ValueError):
        health.set("x", 7)
    with pytest.raises(TypeError):
        health.set(b"x", Resp.SERVING)
    with pytest.raises(TypeError):
        swiftgrpc.health.enable(object())
    server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        late = swiftgrpc.server()
        late.add_insecure_port("127.0.0.1:0")
        late.start()
        with pytest.raises(swiftgrpc.UsageError):
            swiftgrpc.health.enable(late)
        late.stop(None).wait(10)
    finally:
        server.stop(None).wait(10)
    # A server whose host serves the health service itself cannot have the built-in one too.
    own = swiftgrpc.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_pb2_grpc.HealthServicer(), own)
    with pytest.raises(swiftgrpc.UsageError, match="already registered"):
        swiftgrpc.health.enable(own)
