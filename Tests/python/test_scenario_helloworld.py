"""gRPC's helloworld example (sync and asyncio), with swiftgrpc on either or both sides."""
import asyncio

from scenario import load, pairs

SERVER = '''
from concurrent import futures
import grpc
import helloworld_pb2
import helloworld_pb2_grpc


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        return helloworld_pb2.HelloReply(message="Hello, %s!" % request.name)


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    port = server.add_insecure_port("[::]:0")
    server.start()
    return server, port
'''

CLIENT = '''
import grpc
import helloworld_pb2
import helloworld_pb2_grpc


def run(port):
    with grpc.insecure_channel("localhost:%d" % port) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        response = stub.SayHello(helloworld_pb2.HelloRequest(name="you"))
    return response.message
'''

AIO_SERVER = '''
import grpc
import grpc.aio
import helloworld_pb2
import helloworld_pb2_grpc


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    async def SayHello(self, request, context):
        return helloworld_pb2.HelloReply(message="Hello, %s!" % request.name)


async def serve():
    server = grpc.aio.server()
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    port = server.add_insecure_port("[::]:0")
    await server.start()
    return server, port
'''

AIO_CLIENT = '''
import grpc
import grpc.aio
import helloworld_pb2
import helloworld_pb2_grpc


async def run(port):
    async with grpc.aio.insecure_channel("localhost:%d" % port) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        response = await stub.SayHello(helloworld_pb2.HelloRequest(name="you"))
    return response.message
'''


@pairs
def test_helloworld(server_impl, client_impl):
    server, port = load(SERVER, server_impl, "greeter_server").serve()
    try:
        assert load(CLIENT, client_impl, "greeter_client").run(port) == "Hello, you!"
    finally:
        server.stop(None)


@pairs
def test_helloworld_asyncio(server_impl, client_impl):
    async def main():
        server, port = await load(AIO_SERVER, server_impl, "async_greeter_server").serve()
        try:
            return await load(AIO_CLIENT, client_impl, "async_greeter_client").run(port)
        finally:
            await server.stop(None)
    assert asyncio.run(main()) == "Hello, you!"
