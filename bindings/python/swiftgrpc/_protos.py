"""grpcio's runtime proto loading: ``protos``, ``services`` and ``protos_and_services`` import
a .proto file (found on sys.path) as the modules protoc would generate, through grpcio-tools.
The services module is grpc_tools' own, so it imports grpcio; its stubs and
add_*Servicer_to_server work with swiftgrpc's channels and servers all the same."""
from __future__ import annotations

import types
from typing import Tuple

_NEEDS_TOOLS = "Install the grpcio-tools package (1.32.0+) to use the {} function."


def _load(fn_name: str, protobuf_path: str) -> object:
    try:
        import grpc_tools.protoc  # type: ignore[import-not-found]
    except ImportError as e:
        if "grpc_tools" not in str(e):
            raise
        raise NotImplementedError(_NEEDS_TOOLS.format(fn_name)) from None
    fn = getattr(grpc_tools.protoc, "_" + fn_name, None)
    if fn is None:  # a grpcio-tools before 1.32
        raise NotImplementedError(_NEEDS_TOOLS.format(fn_name))
    return fn(protobuf_path)


def protos(protobuf_path: str) -> types.ModuleType:
    """The messages of `protobuf_path` (what protoc writes to *_pb2.py)."""
    return _load("protos", protobuf_path)  # type: ignore[return-value]


def services(protobuf_path: str) -> types.ModuleType:
    """The stubs and servicers of `protobuf_path` (what protoc writes to *_pb2_grpc.py)."""
    return _load("services", protobuf_path)  # type: ignore[return-value]


def protos_and_services(protobuf_path: str) -> Tuple[types.ModuleType, types.ModuleType]:
    """Both modules of `protobuf_path`, as ``(protos, services)``."""
    return _load("protos_and_services", protobuf_path)  # type: ignore[return-value]
