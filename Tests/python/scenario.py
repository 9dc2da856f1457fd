"""Runs code written for grpcio as gRPC's own Python examples are (generated stubs, `import grpc`)
twice: as written, and with that one line changed to `import swiftgrpc as grpc`. A scenario test
gives the source of its server and client; each side is loaded on either implementation, so
the pairs swiftgrpc/grpcio, grpcio/swiftgrpc and swiftgrpc/swiftgrpc all run the same code."""
import types

import pytest

IMPLS = ["grpcio", "swiftgrpc"]
# Server implementation, client implementation (grpcio with itself is the reference).
PAIRS = [("swiftgrpc", "grpcio"), ("grpcio", "swiftgrpc"), ("swiftgrpc", "swiftgrpc")]
pairs = pytest.mark.parametrize("server_impl,client_impl", PAIRS)


def load(source: str, impl: str, name: str) -> types.ModuleType:
    """`source` (whose imports include the line `import grpc`, and perhaps `import grpc.aio`) as
    a module on `impl`: for swiftgrpc, the only change is that import line."""
    if impl == "swiftgrpc":
        assert "import grpc\n" in source
        source = source.replace("import grpc\n", "import swiftgrpc as grpc\n", 1)
        source = source.replace("import grpc.aio\n", "import swiftgrpc.aio\n", 1)
    mod = types.ModuleType(f"{name}_{impl}")
    exec(compile(source, f"<{name} on {impl}>", "exec"), mod.__dict__)
    return mod
