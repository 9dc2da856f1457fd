"""Compression and rich status against grpcio, asserted on the wire through a relay that
decodes every frame (wiretap.py): grpcio clients that compress calling a swiftgrpc server, a
swiftgrpc client calling a grpcio server that compresses its responses, and grpcio-status's
rich errors (google.rpc.Status in grpc-status-details-bin) both ways."""
from concurrent import futures

import grpc
import pytest

import svc_pb2
import svc_pb2_grpc
import swiftgrpc
import swiftgrpc.aio
from conftest import make_server
from servicer import Servicer
from wiretap import WireTap

Msg = svc_pb2.Msg
BIG = b"compressible " * 400  # 5.2 KB that gzip packs into a few hundred bytes


def four_kinds(stub):
    assert stub.Unary(Msg(text="echo", data=BIG), timeout=10).data == BIG
    assert [m.data for m in stub.ServerStream(Msg(n=3, data=BIG), timeout=10)] == [BIG] * 3
    assert stub.ClientStream(iter([Msg(text="a", data=BIG), Msg(text="b")]), timeout=10).text == "a,b"
    assert [m.text for m in stub.Bidi(iter([Msg(text="x", data=BIG), Msg(text="y")]), timeout=10)] == ["X", "Y"]


@pytest.fixture
def tapped_swift_server():
    server, target = make_server("swiftgrpc")
    tap = WireTap(int(target.rsplit(":", 1)[1]))
    yield tap
    tap.close()
    server.stop(None).wait(10)


@pytest.mark.parametrize("compression,name", [(grpc.Compression.Gzip, "gzip"),
                                              (grpc.Compression.Deflate, "deflate")])
def test_grpcio_client_compressing_calls_a_swiftgrpc_server(tapped_swift_server, compression, name):
    tap = tapped_swift_server
    with grpc.insecure_channel(tap.target, compression=compression) as ch:
        four_kinds(svc_pb2_grpc.SvcStub(ch))
    requests = [h for h in tap.headers("request") if ":path" in h]
    assert requests and all(h.get("grpc-encoding") == name for h in requests)
    sent = tap.messages("request")
    assert not [n for _, flag, n in sent if flag == 0 and n > 1000], "a big message went uncompressed"
    packed = [n for _, flag, n in sent if flag == 1]
    assert len(packed) >= 4 and all(n < 1000 for n in packed)  # each BIG, packed small
    heads = [h for h in tap.headers("response") if ":status" in h]
    assert heads and all(h.get("grpc-accept-encoding") == "identity,deflate,gzip" for h in heads)


def test_swiftgrpc_client_calls_a_grpcio_server_that_compresses():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), compression=grpc.Compression.Gzip)
    svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    tap = WireTap(port)
    try:
        with swiftgrpc.insecure_channel(tap.target) as ch:
            four_kinds(svc_pb2_grpc.SvcStub(ch))
        requests = [h for h in tap.headers("request") if ":path" in h]
        assert requests and all(h.get("grpc-accept-encoding") == "identity,deflate,gzip" for h in requests)
        heads = [h for h in tap.headers("response") if ":status" in h]
        assert heads and all(h.get("grpc-encoding") == "gzip" for h in heads)
        flags = [flag for _, flag, n in tap.messages("response")]
        assert 1 in flags, "grpcio did not compress: the test proves nothing"
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_compression_names_equal_grpcios_and_sending_compressed_is_refused_by_name(swift_target):
    for name in ("NoCompression", "Deflate", "Gzip"):
        assert getattr(swiftgrpc.Compression, name) == getattr(grpc.Compression, name)
    for make in (lambda c: swiftgrpc.insecure_channel(swift_target, compression=c),
                 lambda c: swiftgrpc.server(compression=c),
                 lambda c: swiftgrpc.aio.insecure_channel(swift_target, compression=c)):
        for c in (swiftgrpc.Compression.Gzip, grpc.Compression.Deflate):
            with pytest.raises(NotImplementedError, match="compression=(Gzip|Deflate)"):
                make(c)
        with pytest.raises(ValueError):
            make(7)
    with swiftgrpc.insecure_channel(swift_target, compression=grpc.Compression.NoCompression) as ch:
        stub = svc_pb2_grpc.SvcStub(ch)
        assert stub.Unary(Msg(text="echo", data=b"d"), compression=swiftgrpc.Compression.NoCompression).data == b"d"
        with pytest.raises(NotImplementedError, match="compression=Gzip"):
            stub.Unary(Msg(text="echo"), compression=grpc.Compression.Gzip)
        with pytest.raises(NotImplementedError):
            stub.ServerStream(Msg(n=1), compression=grpc.Compression.Gzip)


# -- rich status (grpcio-status)

rpc_status = pytest.importorskip("grpc_status.rpc_status")
from google.protobuf import any_pb2  # noqa: E402
from google.rpc import code_pb2, error_details_pb2, status_pb2  # noqa: E402


def bad_request():
    detail = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="text", description="must not be empty")])
    packed = any_pb2.Any()
    packed.Pack(detail)
    return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad request", details=[packed])


class RichServicer(Servicer):
    def Unary(self, request, context):
        context.abort_with_status(rpc_status.to_status(bad_request()))


def rich_server(impl):
    mod = grpc if impl == "grpcio" else swiftgrpc
    server = mod.server(futures.ThreadPoolExecutor(max_workers=4))
    svc_pb2_grpc.add_SvcServicer_to_server(RichServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.mark.parametrize("server_impl,client_impl", [("swiftgrpc", "grpcio"), ("grpcio", "swiftgrpc"),
                                                     ("swiftgrpc", "swiftgrpc")])
def test_rich_status_round_trips(server_impl, client_impl):
    server, target = rich_server(server_impl)
    try:
        mod = grpc if client_impl == "grpcio" else swiftgrpc
        with mod.insecure_channel(target) as ch:
            with pytest.raises(mod.RpcError) as err:
                svc_pb2_grpc.SvcStub(ch).Unary(Msg(text="x"), timeout=10)
        e = err.value
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details() == "bad request"
        status = rpc_status.from_call(e)
        assert status is not None and status.message == "bad request"
        detail = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(detail)
        assert detail.field_violations[0].field == "text"
    finally:
        server.stop(None).wait(10)
