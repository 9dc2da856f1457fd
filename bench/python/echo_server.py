"""The Python server of the benchmark suite: the same handlers on grpcio or swiftgrpc, with the
sync (thread pool) or asyncio API. Raw byte payloads, the methods of bench/c/bench_server.c:
Get (unary echo), Stream (COUNT, SIZE as two little-endian uint32 -> COUNT messages of SIZE
bytes), Ping (bidi echo).
    python3 echo_server.py grpcio|swiftgrpc sync|aio [WORKERS]
Prints "listening on PORT"; serves until killed. BENCH_COMPRESSION=gzip: see bench_payload.py."""
import asyncio
import os
import struct
import sys
from concurrent import futures

impl, mode = sys.argv[1], sys.argv[2]
workers = int(sys.argv[3]) if len(sys.argv) > 3 else 16
if impl == "grpcio":
    import grpc as mod
    import grpc.aio as aio
else:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
    import swiftgrpc as mod
    import swiftgrpc.aio as aio

import bench_payload  # noqa: E402

OPTIONS = [("grpc.max_receive_message_length", 64 << 20),
           ("grpc.max_send_message_length", 64 << 20)] + bench_payload.OPTIONS


def handlers(get, stream, ping):
    return mod.method_handlers_generic_handler("swiftgrpc.examples.Echo", {
        "Get": mod.unary_unary_rpc_method_handler(get),
        "Stream": mod.unary_stream_rpc_method_handler(stream),
        "Ping": mod.stream_stream_rpc_method_handler(ping),
    })


def stream_request(request):
    count, size = struct.unpack("<II", request)
    return count, bench_payload.stream_message(size)


async def serve_aio():
    async def get(request, context):
        return request

    async def stream(request, context):
        count, message = stream_request(request)
        for _ in range(count):
            yield message

    async def ping(requests, context):
        async for message in requests:
            yield message

    server = aio.server(options=OPTIONS)
    server.add_generic_rpc_handlers((handlers(get, stream, ping),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on {port}", flush=True)
    await server.wait_for_termination()


def serve_sync():
    def stream(request, context):
        count, message = stream_request(request)
        for _ in range(count):
            yield message

    def ping(requests, context):
        yield from requests

    server = mod.server(futures.ThreadPoolExecutor(max_workers=workers), options=OPTIONS)
    server.add_generic_rpc_handlers((handlers(lambda request, context: request, stream, ping),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    serve_sync() if mode == "sync" else asyncio.run(serve_aio())
