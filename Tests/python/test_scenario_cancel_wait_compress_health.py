"""gRPC's cancellation, wait_for_ready, compression, keep_alive and health_checking examples
(and asyncio cancellation), with swiftgrpc on either side."""
import asyncio
import socket

from scenario import load, pairs

STREAM_SERVER = '''
import threading
from concurrent import futures
import grpc
import route_guide_pb2
import route_guide_pb2_grpc

stopped = threading.Event()


class RouteGuide(route_guide_pb2_grpc.RouteGuideServicer):
    def ListFeatures(self, request, context):
        context.add_callback(stopped.set)  # cancellation example: the server learns of it
        i = 0
        while context.is_active():
            i += 1
            yield route_guide_pb2.Feature(name="f%d" % i)


def serve(compression=None, options=None):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10), compression=compression,
                         options=options)
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(RouteGuide(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
'''

STREAM_CLIENT = '''
import grpc
import route_guide_pb2
import route_guide_pb2_grpc


def run(port, compression=None, options=None):
    with grpc.insecure_channel("127.0.0.1:%d" % port, options=options, compression=compression) as ch:
        stub = route_guide_pb2_grpc.RouteGuideStub(ch)
        responses = stub.ListFeatures(route_guide_pb2.Rectangle(), timeout=30)
        names = [next(responses).name for _ in range(3)]
        responses.cancel()
        try:
            next(responses)
        except grpc.RpcError as e:
            return names, e.code()
'''

WAIT_CLIENT = '''
import threading
import grpc
import helloworld_pb2
import helloworld_pb2_grpc


def run(port, started):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        try:  # without wait_for_ready: fails at once while nothing listens
            stub.SayHello(helloworld_pb2.HelloRequest(name="early"), timeout=10)
        except grpc.RpcError as e:
            early = e.code()
        future = stub.SayHello.future(helloworld_pb2.HelloRequest(name="you"), wait_for_ready=True,
                                      timeout=30)
        started.set()  # now the server may come up
        return early, future.result().message
'''

HEALTH_SERVER = '''
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("helloworld.Greeter", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port, servicer
'''

HEALTH_CLIENT = '''
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def run(port):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        ok = stub.Check(health_pb2.HealthCheckRequest(service="helloworld.Greeter"), timeout=10).status
        try:
            stub.Check(health_pb2.HealthCheckRequest(service="unknown"), timeout=10)
        except grpc.RpcError as e:
            return ok, e.code()
'''

HELLO_SERVER = '''
from concurrent import futures
import grpc
import helloworld_pb2
import helloworld_pb2_grpc


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        return helloworld_pb2.HelloReply(message="Hello, %s!" % request.name)


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    return server
'''


@pairs
def test_cancellation(server_impl, client_impl):
    import grpc
    srv = load(STREAM_SERVER, server_impl, "cancel_server")
    server, port = srv.serve()
    try:
        names, code = load(STREAM_CLIENT, client_impl, "cancel_client").run(port)
        assert names == ["f1", "f2", "f3"] and code == grpc.StatusCode.CANCELLED
        assert srv.stopped.wait(10)  # the server's generator stopped and its callback ran
    finally:
        server.stop(None)


@pairs
def test_compression_and_keep_alive(server_impl, client_impl):
    import grpc
    import swiftgrpc
    mods = {"grpcio": grpc, "swiftgrpc": swiftgrpc}
    keepalive = [("grpc.keepalive_time_ms", 10000), ("grpc.keepalive_timeout_ms", 5000),
                 ("grpc.keepalive_permit_without_calls", True), ("grpc.http2.max_pings_without_data", 0)]
    srv = load(STREAM_SERVER, server_impl, "gzip_server")
    server, port = srv.serve(compression=mods[server_impl].Compression.Gzip,
                             options=[("grpc.keepalive_time_ms", 20000), ("grpc.keepalive_timeout_ms", 10000),
                                      ("grpc.http2.min_ping_interval_without_data_ms", 5000),
                                      ("grpc.max_connection_idle_ms", 10000)])
    try:
        names, code = load(STREAM_CLIENT, client_impl, "gzip_client").run(
            port, compression=mods[client_impl].Compression.Gzip, options=keepalive)
        assert names == ["f1", "f2", "f3"] and code == grpc.StatusCode.CANCELLED
    finally:
        server.stop(None)


@pairs
def test_wait_for_ready(server_impl, client_impl):
    import threading
    import grpc
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started, result = threading.Event(), {}
    client = load(WAIT_CLIENT, client_impl, "wait_client")
    t = threading.Thread(target=lambda: result.update(out=client.run(port, started)))
    t.start()
    assert started.wait(30)
    server = load(HELLO_SERVER, server_impl, "wait_server").serve(port)
    try:
        t.join(60)
        assert result["out"] == (grpc.StatusCode.UNAVAILABLE, "Hello, you!")
    finally:
        server.stop(None)


@pairs
def test_health_checking(server_impl, client_impl):
    import grpc
    from grpc_health.v1 import health_pb2
    server, port, _ = load(HEALTH_SERVER, server_impl, "health_server").serve()
    try:
        ok, missing = load(HEALTH_CLIENT, client_impl, "health_client").run(port)
        assert ok == health_pb2.HealthCheckResponse.SERVING and missing == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(None)


AIO_CANCEL = '''
import asyncio
import grpc
import grpc.aio
import route_guide_pb2
import route_guide_pb2_grpc


class RouteGuide(route_guide_pb2_grpc.RouteGuideServicer):
    def __init__(self):
        self.cancelled = asyncio.Event()

    async def ListFeatures(self, request, context):
        try:
            i = 0
            while True:
                i += 1
                yield route_guide_pb2.Feature(name="f%d" % i)
                await asyncio.sleep(0)
        finally:  # cancelled, or closed once its task was
            self.cancelled.set()


async def serve():
    server = grpc.aio.server()
    servicer = RouteGuide()
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port, servicer


async def run(port):
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as channel:
        stub = route_guide_pb2_grpc.RouteGuideStub(channel)
        call = stub.ListFeatures(route_guide_pb2.Rectangle())
        names = []
        async for feature in call:
            names.append(feature.name)
            if len(names) == 3:
                call.cancel()
                break
        return names, call.cancelled(), await call.code()
'''


@pairs
def test_cancellation_asyncio(server_impl, client_impl):
    import grpc

    async def main():
        server, port, servicer = await load(AIO_CANCEL, server_impl, "aio_cancel_server").serve()
        try:
            out = await load(AIO_CANCEL, client_impl, "aio_cancel_client").run(port)
            await asyncio.wait_for(servicer.cancelled.wait(), 10)
            return out
        finally:
            await server.stop(None)
    names, cancelled, code = asyncio.run(main())
    assert names == ["f1", "f2", "f3"] and cancelled and code == grpc.StatusCode.CANCELLED
