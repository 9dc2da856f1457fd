"""A Python echo server, the same handler on grpcio or swiftgrpc, sync or asyncio, for
python_bench.sh. Method /swiftgrpc.examples.Echo/Get returns the request bytes.
    python3 py_echo_server.py grpcio|swiftgrpc sync|aio
Prints "listening on PORT"."""
import asyncio
import os
import sys
from concurrent import futures

impl, mode = sys.argv[1], sys.argv[2]
if impl == "grpcio":
    import grpc as mod
    import grpc.aio as aio
else:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
    import swiftgrpc as mod
    import swiftgrpc.aio as aio


def handlers(fn):
    return mod.method_handlers_generic_handler(
        "swiftgrpc.examples.Echo", {"Get": mod.unary_unary_rpc_method_handler(fn)})


async def serve_aio():
    async def get(request, context):
        return request
    server = aio.server()
    server.add_generic_rpc_handlers((handlers(get),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on {port}", flush=True)
    await server.wait_for_termination()


def serve_sync():
    server = mod.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handlers(lambda request, context: request),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    serve_sync() if mode == "sync" else asyncio.run(serve_aio())
