"""grpcio's reflection on the same schema, the reference for the Ruby reflection tests.

    python3 reflection_grpcio_server.py PROTO_DIR

Compiles catalog.proto and shapes.proto with grpcio-tools, serves swiftgrpc.catalog.Catalog
(Get answers an Item as the Ruby test servicer does) with grpcio-reflection's servicer on
grpc.reflection.v1alpha and, on the same messages, grpc.reflection.v1. Prints the port, serves
until stdin closes.
"""
import importlib
import sys
import tempfile
from concurrent import futures

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_tools import protoc


def main():
    proto_dir = sys.argv[1]
    out = tempfile.mkdtemp(prefix="swiftgrpc-reflection-")
    include = importlib.resources.files("grpc_tools") / "_proto"
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                      "catalog.proto", "shapes.proto"])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, out)
    import catalog_pb2
    import catalog_pb2_grpc

    class Catalog(catalog_pb2_grpc.CatalogServicer):
        def Get(self, request, context):
            return catalog_pb2.Item(name=request.name, counts={"a": 2}, place="shelf")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    catalog_pb2_grpc.add_CatalogServicer_to_server(Catalog(), server)
    v1 = "grpc.reflection.v1.ServerReflection"
    names = ["swiftgrpc.catalog.Catalog", reflection.SERVICE_NAME, v1]
    servicer = reflection.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(v1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(None)


if __name__ == "__main__":
    main()
