"""A grpcio echo server (sync or aio) with the same method as examples/c/echo_server.c, as the
reference peer of h2load_echo.sh. Prints "listening on PORT"."""
import asyncio
import sys
from concurrent import futures

import grpc

METHOD = "/swiftgrpc.examples.Echo/Get"


def handlers(fn):
    return grpc.method_handlers_generic_handler(
        "swiftgrpc.examples.Echo", {"Get": grpc.unary_unary_rpc_method_handler(fn)})


async def serve_aio():
    async def get(request, context):
        return request
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handlers(get),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on {port}", flush=True)
    await server.wait_for_termination()


def serve_sync():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handlers(lambda request, context: request),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    if sys.argv[1:] == ["sync"]:
        serve_sync()
    else:
        asyncio.run(serve_aio())
