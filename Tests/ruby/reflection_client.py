"""A reflection client (grpcio-reflection's) for the Ruby reflection tests.

    python3 reflection_client.py PORT

Prints one JSON object: what ServerReflectionInfo answers over grpc.reflection.v1alpha (through
grpcio-reflection's ProtoReflectionDescriptorDatabase, as tools use it) and over
grpc.reflection.v1 (the same messages on the v1 path): the services listed, every file
describing swiftgrpc.catalog.Catalog normalised (fields by number, lists sorted) so that two
servers' answers compare equal when they describe the same schema, the errors of unknown
symbols and files, and the answer of a real call made with message classes built only from
the reflected descriptors.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_reflection.v1alpha import reflection_pb2 as r
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

SERVICE = "swiftgrpc.catalog.Catalog"


def normalise(fdp):
    d = json_format.MessageToDict(fdp)
    d.pop("options", None)
    d.pop("sourceCodeInfo", None)
    d["dependency"] = sorted(d.get("dependency", []))

    def message(m):
        m["field"] = sorted(m.get("field", []), key=lambda f: f["number"])
        for f in m["field"]:
            f.pop("jsonName", None)
        m["nestedType"] = sorted((message(n) for n in m.get("nestedType", [])), key=lambda n: n["name"])
        m["enumType"] = sorted(m.get("enumType", []), key=lambda e: e["name"])
        return m

    d["messageType"] = sorted((message(m) for m in d.get("messageType", [])), key=lambda m: m["name"])
    d["enumType"] = sorted(d.get("enumType", []), key=lambda e: e["name"])
    return d


def raw_ask(channel, path, request):
    call = channel.stream_stream(path, request_serializer=r.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=r.ServerReflectionResponse.FromString)
    return list(call(iter([request]), timeout=10))[0]


def files_of(response):
    return [FileDescriptorProto.FromString(b) for b in response.file_descriptor_response.file_descriptor_proto]


def main():
    port = sys.argv[1]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    out = {}
    # v1alpha, as tools do: the descriptor database, then a pool built from it alone.
    db = ProtoReflectionDescriptorDatabase(channel)
    out["services"] = sorted(db.get_services())
    pool = descriptor_pool.DescriptorPool(db)
    svc = pool.FindServiceByName(SERVICE)
    out["methods"] = [[m.name, m.input_type.full_name, m.output_type.full_name,
                       m.client_streaming, m.server_streaming] for m in svc.methods]
    item = pool.FindMessageTypeByName("swiftgrpc.catalog.Item")
    out["counts_is_map"] = item.fields_by_name["counts"].message_type.GetOptions().map_entry
    out["nested_enum"] = pool.FindEnumTypeByName("swiftgrpc.catalog.Item.Tag.Kind").values_by_number[1].name
    # a call made with classes built only from reflection
    query_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("swiftgrpc.catalog.Query"))
    item_cls = message_factory.GetMessageClass(item)
    get = channel.unary_unary(f"/{SERVICE}/Get", request_serializer=query_cls.SerializeToString,
                              response_deserializer=item_cls.FromString)
    reply = get(query_cls(name="lamp"), timeout=10)
    out["call"] = json_format.MessageToDict(reply)
    # v1: the same messages on the v1 path; every file by symbol, with its dependencies
    v1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    listed = raw_ask(channel, v1, r.ServerReflectionRequest(list_services=""))
    out["v1_services"] = sorted(s.name for s in listed.list_services_response.service)
    files = {}
    for symbol in [SERVICE, f"{SERVICE}.Get", "swiftgrpc.catalog.Item.Tag", "swiftgrpc.shapes.Point"]:
        got = raw_ask(channel, v1, r.ServerReflectionRequest(file_containing_symbol=symbol))
        for f in files_of(got):
            files.setdefault(f.name, normalise(f))
        answer = files_of(got)[0].name if files_of(got) else ["error", got.error_response.error_code]
        out.setdefault("symbol_files", {})[symbol] = answer
    by_name = raw_ask(channel, v1, r.ServerReflectionRequest(file_by_filename="shapes.proto"))
    out["by_filename"] = [f.name for f in files_of(by_name)]
    out["files"] = {name: files[name] for name in sorted(files) if not name.startswith("google/")}
    out["imports_well_known"] = "google/protobuf/timestamp.proto" in files
    for key, req in [("unknown_symbol", r.ServerReflectionRequest(file_containing_symbol="no.Such")),
                     ("unknown_file", r.ServerReflectionRequest(file_by_filename="nope.proto")),
                     ("extension", r.ServerReflectionRequest(file_containing_extension=r.ExtensionRequest(
                         containing_type="swiftgrpc.catalog.Item", extension_number=100)))]:
        got = raw_ask(channel, v1, req)
        out[key] = [got.WhichOneof("message_response"), got.error_response.error_code]
    numbers = raw_ask(channel, v1, r.ServerReflectionRequest(all_extension_numbers_of_type="swiftgrpc.catalog.Item"))
    out["extension_numbers"] = [numbers.all_extension_numbers_response.base_type_name,
                                list(numbers.all_extension_numbers_response.extension_number)]
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
