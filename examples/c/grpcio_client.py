"""Calls the C echo server (examples/c/echo_server.c) with grpcio: all four RPC kinds."""
import sys

import grpc

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
with grpc.insecure_channel(target) as channel:
    get = channel.unary_unary("/swiftgrpc.examples.Echo/Get")
    expand = channel.unary_stream("/swiftgrpc.examples.Echo/Expand")
    collect = channel.stream_unary("/swiftgrpc.examples.Echo/Collect")
    update = channel.stream_stream("/swiftgrpc.examples.Echo/Update")

    reply = get(b"hello from grpcio", timeout=10)
    print(f"Get      (unary)            -> {reply!r}")
    assert reply == b"hello from grpcio"

    replies = list(expand(b"one two three", timeout=10))
    print(f"Expand   (server streaming) -> {replies!r}")
    assert replies == [b"one", b"two", b"three"]

    reply = collect(iter([b"a", b"b", b"c"]), timeout=10)
    print(f"Collect  (client streaming) -> {reply!r}")
    assert reply == b"a b c"

    replies = list(update(iter([b"x", b"y"]), timeout=10))
    print(f"Update   (bidi streaming)   -> {replies!r}")
    assert replies == [b"x", b"y"]

    try:
        channel.unary_unary("/swiftgrpc.examples.Echo/Missing")(b"", timeout=10)
    except grpc.RpcError as e:
        print(f"Missing  (unregistered)     -> {e.code().name}: {e.details()}")
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED
print("all four RPC kinds answered by the C host")
