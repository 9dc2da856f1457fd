"""swiftgrpc on PyPy 3 (run by check_interpreters.sh with the installed wheel): grpcio has no PyPy
build, so the peers are grpcio in a CPython subprocess. Both directions, sync and asyncio, all
four RPC kinds; exits non-zero on any mismatch.
    pypy3 Tests/python/pypy_check.py <CPython with grpcio>"""
import asyncio
import os
import platform
import subprocess
import sys
import textwrap

import swiftgrpc
import swiftgrpc.aio

CPYTHON = sys.argv[1]
assert platform.python_implementation() == "PyPy", platform.python_implementation()
assert swiftgrpc.library_path.startswith(os.path.dirname(swiftgrpc.__file__)), swiftgrpc.library_path

GRPCIO_CLIENT = textwrap.dedent("""
    import sys, grpc
    with grpc.insecure_channel(sys.argv[1]) as ch:
        print(ch.unary_unary("/pypy.S/Unary")(b"abc", timeout=10).decode())
        print(",".join(m.decode() for m in ch.unary_stream("/pypy.S/ServerStream")(b"s", timeout=10)))
        print(ch.stream_unary("/pypy.S/ClientStream")(iter([b"a", b"b", b"c"]), timeout=10).decode())
        print(",".join(m.decode() for m in ch.stream_stream("/pypy.S/Bidi")(iter([b"x", b"y"]), timeout=10)))
        try:
            ch.unary_unary("/pypy.S/Fail")(b"", timeout=10)
        except grpc.RpcError as e:
            print(e.code().name, e.details())
""")

GRPCIO_SERVER = textwrap.dedent("""
    import sys, grpc
    from concurrent import futures
    s = grpc.server(futures.ThreadPoolExecutor(4))
    s.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("pypy.S", {
        "Unary": grpc.unary_unary_rpc_method_handler(lambda r, c: r[::-1]),
        "ServerStream": grpc.unary_stream_rpc_method_handler(lambda r, c: (r + bytes([48 + i]) for i in range(3))),
    })])
    print(s.add_insecure_port("127.0.0.1:0"), flush=True)
    s.start()
    sys.stdin.read()  # until the parent closes it
    s.stop(None)
""")


def handlers():
    def fail(req, ctx):
        ctx.abort(swiftgrpc.StatusCode.FAILED_PRECONDITION, "not on PyPy")

    return swiftgrpc.method_handlers_generic_handler("pypy.S", {
        "Unary": swiftgrpc.unary_unary_rpc_method_handler(lambda r, c: r[::-1]),
        "ServerStream": swiftgrpc.unary_stream_rpc_method_handler(lambda r, c: (r + bytes([48 + i]) for i in range(3))),
        "ClientStream": swiftgrpc.stream_unary_rpc_method_handler(lambda rs, c: b"+".join(rs)),
        "Bidi": swiftgrpc.stream_stream_rpc_method_handler(lambda rs, c: (r.upper() for r in rs)),
        "Fail": swiftgrpc.unary_unary_rpc_method_handler(fail),
    })


def serve_to_grpcio():
    s = swiftgrpc.server(max_workers=4, handlers=[handlers()])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    try:
        out = subprocess.run([CPYTHON, "-c", GRPCIO_CLIENT, f"127.0.0.1:{port}"], capture_output=True,
                             text=True, timeout=120, check=True).stdout.split("\n")
    finally:
        s.stop(None).wait()
    assert out[:5] == ["cba", "s0,s1,s2", "a+b+c", "X,Y", "FAILED_PRECONDITION not on PyPy"], out
    print("PyPy swiftgrpc server <- grpcio client: OK")


def call_grpcio():
    p = subprocess.Popen([CPYTHON, "-c", GRPCIO_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        target = f"127.0.0.1:{int(p.stdout.readline())}"
        with swiftgrpc.insecure_channel(target) as ch:
            assert ch.unary_unary("/pypy.S/Unary")(b"abc", timeout=10) == b"cba"
            assert list(ch.unary_stream("/pypy.S/ServerStream")(b"s", timeout=10)) == [b"s0", b"s1", b"s2"]
            f = ch.unary_unary("/pypy.S/Unary").future(b"xy", timeout=10)
            assert f.result(timeout=10) == b"yx"
            try:
                ch.unary_unary("/pypy.S/Missing")(b"", timeout=10)
                raise SystemExit("expected UNIMPLEMENTED")
            except swiftgrpc.RpcError as e:
                assert e.code() == swiftgrpc.StatusCode.UNIMPLEMENTED

        async def aio():
            async with swiftgrpc.aio.insecure_channel(target) as ch:
                assert await ch.unary_unary("/pypy.S/Unary")(b"def", timeout=10) == b"fed"
                got = [m async for m in ch.unary_stream("/pypy.S/ServerStream")(b"a", timeout=10)]
                assert got == [b"a0", b"a1", b"a2"], got
        asyncio.run(aio())
    finally:
        p.stdin.close()
        p.wait(30)
    print("PyPy swiftgrpc client (sync and asyncio) -> grpcio server: OK")


serve_to_grpcio()
call_grpcio()
print("PyPy", platform.python_version(), "OK with", swiftgrpc.library_path)
