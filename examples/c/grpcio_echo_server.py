"""The same swiftgrpc.examples.Echo service served by grpcio, so the C client
(examples/c/echo_client.c) can be shown to talk to a foreign gRPC server too.
Prints "listening on PORT"; stops on stdin EOF."""
import sys
from concurrent import futures

import grpc


def ident(b):
    return b


def expand(request, context):
    for word in request.split(b" "):
        yield word


handlers = {
    "Get": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req, ident, ident),
    "Expand": grpc.unary_stream_rpc_method_handler(expand, ident, ident),
    "Collect": grpc.stream_unary_rpc_method_handler(lambda it, ctx: b" ".join(it), ident, ident),
    "Update": grpc.stream_stream_rpc_method_handler(lambda it, ctx: (m for m in it), ident, ident),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("swiftgrpc.examples.Echo", handlers),))
port = server.add_insecure_port(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0")
server.start()
print(f"listening on {port}", flush=True)
sys.stdin.read()
server.stop(0)
