"""Calls the Greeter with swiftgrpc (or grpcio with --grpcio): the generated stub, unchanged.

    python3 greeter_client.py 127.0.0.1:50051 [--grpcio] [--name you]"""
import argparse
import sys

import protos  # noqa: F401
import helloworld_pb2
import helloworld_pb2_grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--name", default="swiftgrpc")
    ap.add_argument("--grpcio", action="store_true", help="call with grpcio instead")
    args = ap.parse_args()
    if args.grpcio:
        import grpc as impl
    else:
        import swiftgrpc as impl
    with impl.insecure_channel(args.target) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        reply = stub.SayHello(helloworld_pb2.HelloRequest(name=args.name), timeout=10)
        print(reply.message)
        try:
            stub.SayHello(helloworld_pb2.HelloRequest(name=""), timeout=10)
        except impl.RpcError as e:
            print(f"empty name: {e.code().name}: {e.details()}")
            return 0
    print("expected INVALID_ARGUMENT for an empty name", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
