"""The helloworld Greeter served by swiftgrpc — grpcio's example, with one changed import.

    python3 greeter_server.py [--port 50051] [--grpcio]

--grpcio serves the very same servicer with grpcio instead (to compare, or to be called by
greeter_client.py). Prints "listening on <port>" and serves until interrupted."""
import argparse
from concurrent import futures

import protos  # noqa: F401  (generates helloworld_pb2*.py)
import helloworld_pb2
import helloworld_pb2_grpc


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def __init__(self, status_codes):
        self.codes = status_codes  # grpc.StatusCode or swiftgrpc.StatusCode

    def SayHello(self, request, context):
        if not request.name:
            # (a handler's exception would end the call UNKNOWN, with grpcio as with swiftgrpc)
            context.abort(self.codes.INVALID_ARGUMENT, "name must not be empty")
        return helloworld_pb2.HelloReply(message=f"Hello, {request.name}!")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=50051)
    ap.add_argument("--grpcio", action="store_true", help="serve with grpcio instead")
    args = ap.parse_args()
    if args.grpcio:
        import grpc as impl
    else:
        import swiftgrpc as impl
    server = impl.server(futures.ThreadPoolExecutor(max_workers=10))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(impl.StatusCode), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"listening on {port}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(1).wait()


if __name__ == "__main__":
    main()
