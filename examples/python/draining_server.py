"""A Greeter that leaves the way a server behind a load balancer or in Kubernetes should: on
SIGTERM it says NOT_SERVING on its health service (so probes and balancers stop sending), sends
every connection GOAWAY (clients move new calls elsewhere), lets the calls in flight finish
within a grace period, and exits.

    python3 draining_server.py [--port 50051] [--grace 10]

Prints "listening on <port>", then "draining" and "drained" on SIGTERM. A name starting with
"slow" makes SayHello take a second (to watch a call finish during the grace)."""
import argparse
import signal
import threading
import time
from concurrent import futures

import protos  # noqa: F401  (generates helloworld_pb2*.py)
import helloworld_pb2
import helloworld_pb2_grpc
import swiftgrpc
import swiftgrpc.health


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        if request.name.startswith("slow"):
            time.sleep(1)
        return helloworld_pb2.HelloReply(message=f"Hello, {request.name}!")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=50051)
    ap.add_argument("--grace", type=float, default=10.0)
    args = ap.parse_args()
    server = swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=10), options=[
        # Rebalance long-lived client connections every few minutes (gRFC A9).
        ("grpc.max_connection_age_ms", 5 * 60 * 1000),
        ("grpc.max_connection_age_grace_ms", 30 * 1000),
    ])
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    health = swiftgrpc.health.enable(server)
    health.set("helloworld.Greeter", swiftgrpc.health.SERVING)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"listening on {port}", flush=True)

    term = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: term.set())
    term.wait()
    print("draining", flush=True)
    # NOT_SERVING on every service and the Watch streams ended, GOAWAY, then the grace.
    server.stop(args.grace).wait()
    print("drained", flush=True)


if __name__ == "__main__":
    main()
