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


def test_compression_names_equal_grpcios_and_bad_values_are_refused(swift_target):
    for name in ("NoCompression", "Deflate", "Gzip"):
        assert getattr(swiftgrpc.Compression, name) == getattr(grpc.Compression, name)
    for make in (lambda c: swiftgrpc.insecure_channel(swift_target, compression=c),
                 lambda c: swiftgrpc.server(compression=c),
                 lambda c: swiftgrpc.aio.insecure_channel(swift_target, compression=c),
                 lambda c: swiftgrpc.insecure_channel(
                     swift_target, options=[("grpc.default_compression_algorithm", c)])):
        for bad in (7, -1, "gzip", True):
            with pytest.raises(ValueError):
                make(bad)
    with swiftgrpc.insecure_channel(swift_target) as ch:
        stub = svc_pb2_grpc.SvcStub(ch)
        for bad in (3, "gzip"):
            with pytest.raises(ValueError, match="compression"):
                stub.Unary(Msg(text="echo"), compression=bad)
            with pytest.raises(ValueError, match="compression"):
                stub.ServerStream(Msg(n=1), compression=bad)
        # A refused call changed nothing: the channel still works.
        assert stub.Unary(Msg(text="echo", data=b"d"), compression=grpc.Compression.Gzip).data == b"d"


def big_messages(tap, direction):
    """(compressed flag, wire length) of the messages that carried BIG (5.2 KB uncompressed):
    those sent compressed are a few hundred bytes; sent plain, above 5000."""
    return [(flag, n) for _, flag, n in tap.messages(direction) if flag == 1 or n > 5000]


def assert_compressed(tap, direction, name, at_least):
    blocks = [h for h in tap.headers(direction) if ":path" in h or ":status" in h]
    assert blocks and all(h.get("grpc-encoding") == name for h in blocks), blocks
    big = big_messages(tap, direction)
    assert len(big) >= at_least and all(flag == 1 and n < 1000 for flag, n in big), big


def assert_plain(tap, direction):
    blocks = [h for h in tap.headers(direction) if ":path" in h or ":status" in h]
    assert blocks and not [h for h in blocks if "grpc-encoding" in h], blocks
    big = big_messages(tap, direction)
    assert big and all(flag == 0 for flag, _ in big), big


def grpcio_server(**kw):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), **kw)
    svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.mark.parametrize("compression,name", [(grpc.Compression.Gzip, "gzip"),
                                              (grpc.Compression.Deflate, "deflate")])
@pytest.mark.parametrize("level", ["channel", "option", "call"])
def test_swiftgrpc_client_compresses_toward_a_grpcio_server(compression, name, level):
    server, port = grpcio_server()
    tap = WireTap(port)
    try:
        kw = {"compression": compression} if level == "channel" else {}
        if level == "option":
            kw = {"options": [("grpc.default_compression_algorithm", compression)]}
        with swiftgrpc.insecure_channel(tap.target, **kw) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            call_kw = {"compression": compression} if level == "call" else {}
            assert stub.Unary(Msg(text="echo", data=BIG), timeout=10, **call_kw).data == BIG
            assert [m.data for m in stub.ServerStream(Msg(n=2, data=BIG), timeout=10, **call_kw)] == [BIG] * 2
            assert stub.ClientStream(iter([Msg(text="a", data=BIG), Msg(text="b")]), timeout=10,
                                     **call_kw).text == "a,b"
            assert [m.text for m in stub.Bidi(iter([Msg(text="x", data=BIG)]), timeout=10,
                                              **call_kw)] == ["X"]
        assert_compressed(tap, "request", name, at_least=4)
        assert_plain(tap, "response")  # the grpcio server compresses nothing
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_a_call_can_turn_off_its_channels_compression():
    server, port = grpcio_server()
    tap = WireTap(port)
    try:
        with swiftgrpc.insecure_channel(tap.target, compression=grpc.Compression.Gzip) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            assert stub.Unary(Msg(text="echo", data=BIG), timeout=10,
                              compression=grpc.Compression.NoCompression).data == BIG
        assert_plain(tap, "request")
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_swiftgrpc_client_stops_compressing_toward_a_server_that_refuses_the_algorithm():
    # A grpcio server with only identity enabled says so in its response headers, and refuses
    # a gzip request UNIMPLEMENTED without saying what it accepts.
    server, port = grpcio_server(options=[("grpc.compression_enabled_algorithms_bitset", 1)])
    tap = WireTap(port)
    try:
        with swiftgrpc.insecure_channel(tap.target, compression=grpc.Compression.Gzip) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            with pytest.raises(grpc.RpcError) as err:
                stub.Unary(Msg(text="echo", data=BIG), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            for _ in range(3):  # every later call goes uncompressed, and is answered
                assert stub.Unary(Msg(text="echo", data=BIG), timeout=10).data == BIG
        requests = [h for h in tap.headers("request") if ":path" in h]
        assert [h.get("grpc-encoding") for h in requests] == ["gzip", None, None, None]
        assert [flag for flag, _ in big_messages(tap, "request")] == [1, 0, 0, 0]
    finally:
        tap.close()
        server.stop(None).wait(10)


def swift_server(servicer=None, **kw):
    server = swiftgrpc.server(**kw)
    svc_pb2_grpc.add_SvcServicer_to_server(servicer or Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.mark.parametrize("compression,name", [(grpc.Compression.Gzip, "gzip"),
                                              (grpc.Compression.Deflate, "deflate")])
@pytest.mark.parametrize("how", ["compression", "option"])
def test_swiftgrpc_server_compresses_toward_a_grpcio_client(compression, name, how):
    kw = {"compression": compression} if how == "compression" else {
        "options": [("grpc.default_compression_algorithm", compression)]}
    server, port = swift_server(**kw)
    tap = WireTap(port)
    try:
        with grpc.insecure_channel(tap.target) as ch:
            four_kinds(svc_pb2_grpc.SvcStub(ch))
        assert_compressed(tap, "response", name, at_least=5)
        assert_plain(tap, "request")
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_swiftgrpc_server_does_not_compress_toward_a_client_that_accepts_only_identity():
    server, port = swift_server(compression=grpc.Compression.Gzip)
    tap = WireTap(port)
    try:
        with grpc.insecure_channel(tap.target,
                                   options=[("grpc.compression_enabled_algorithms_bitset", 1)]) as ch:
            four_kinds(svc_pb2_grpc.SvcStub(ch))
        assert {h.get("grpc-accept-encoding") for h in tap.headers("request") if ":path" in h} == {"identity"}
        assert_plain(tap, "response")
    finally:
        tap.close()
        server.stop(None).wait(10)


class ChoosingServicer(Servicer):
    """Chooses compression per call and per message, the same way on grpcio and swiftgrpc."""

    def Unary(self, request, context):
        if request.text == "gzip":
            context.set_compression(grpc.Compression.Gzip)
        elif request.text == "gzip-but-not-this":
            context.set_compression(grpc.Compression.Gzip)
            context.disable_next_message_compression()
        elif request.text == "late":
            context.send_initial_metadata(())
            try:
                context.set_compression(grpc.Compression.Gzip)
            except ValueError as e:
                return Msg(text=f"refused: {e}", data=request.data)
            return Msg(text="accepted", data=request.data)
        return Msg(text=request.text, data=request.data)

    def ServerStream(self, request, context):
        yield from three_messages_the_second_plain(context, grpc.Compression.Deflate)


def three_messages_the_second_plain(context, compression):
    context.set_compression(compression)
    for i in range(3):
        if i == 1:
            context.disable_next_message_compression()
        yield Msg(text=str(i), data=BIG)


@pytest.mark.parametrize("impl", ["grpcio", "swiftgrpc"])
def test_a_handler_chooses_compression_per_call_and_per_message(impl):
    if impl == "grpcio":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        svc_pb2_grpc.add_SvcServicer_to_server(ChoosingServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
    else:
        server, port = swift_server(ChoosingServicer())
    tap = WireTap(port)
    try:
        with grpc.insecure_channel(tap.target) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            for text in ("plain", "gzip", "gzip-but-not-this"):
                assert stub.Unary(Msg(text=text, data=BIG), timeout=10).data == BIG
            assert [m.text for m in stub.ServerStream(Msg(), timeout=10)] == ["0", "1", "2"]
        heads = [h for h in tap.headers("response") if ":status" in h]
        assert [h.get("grpc-encoding") for h in heads] == [None, "gzip", "gzip", "deflate"]
        assert [flag for flag, _ in big_messages(tap, "response")] == [0, 1, 0, 1, 0, 1]
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_set_compression_after_the_headers_is_refused_by_name():
    # grpcio ignores it silently; swiftgrpc says why it cannot apply.
    server, port = swift_server(ChoosingServicer())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = svc_pb2_grpc.SvcStub(ch).Unary(Msg(text="late", data=b"x"), timeout=10)
        assert reply.text.startswith("refused: context.set_compression: the response headers were already sent")
    finally:
        server.stop(None).wait(10)


class AsyncChoosingServicer(svc_pb2_grpc.SvcServicer):
    async def Unary(self, request, context):
        if request.text == "gzip":
            context.set_compression(grpc.Compression.Gzip)
        inspect = getattr(context, "request_compressed", None)  # swiftgrpc only
        return Msg(text=f"{request.text} {inspect and inspect()}", data=request.data)

    async def ServerStream(self, request, context):
        for m in three_messages_the_second_plain(context, grpc.Compression.Gzip):
            yield m


@pytest.mark.parametrize("server_impl", ["grpcio", "swiftgrpc"])
def test_asyncio_compression_both_ways(server_impl):
    import asyncio
    import grpc.aio

    async def body():
        mod = grpc.aio if server_impl == "grpcio" else swiftgrpc.aio
        server = mod.server()
        svc_pb2_grpc.add_SvcServicer_to_server(AsyncChoosingServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        tap = WireTap(port)
        try:
            async with swiftgrpc.aio.insecure_channel(tap.target, compression=grpc.Compression.Deflate) as ch:
                stub = svc_pb2_grpc.SvcStub(ch)
                seen = "True" if server_impl == "swiftgrpc" else "None"
                assert await stub.Unary(Msg(text="plain", data=BIG), timeout=10) == Msg(
                    text=f"plain {seen}", data=BIG)
                seen = "False" if server_impl == "swiftgrpc" else "None"
                assert await stub.Unary(Msg(text="gzip", data=BIG), timeout=10,
                                        compression=grpc.Compression.NoCompression) == Msg(
                    text=f"gzip {seen}", data=BIG)
                assert [m.text async for m in stub.ServerStream(Msg(), timeout=10)] == ["0", "1", "2"]
        finally:
            tap.close()
            await server.stop(None)
        requests = [h for h in tap.headers("request") if ":path" in h]
        assert [h.get("grpc-encoding") for h in requests] == ["deflate", None, "deflate"]
        assert [flag for flag, _ in big_messages(tap, "request")] == [1, 0]
        # grpcio's asyncio server (1.85) leaves a unary response uncompressed after
        # set_compression; swiftgrpc compresses it, as grpcio's sync server does.
        unary = 1 if server_impl == "swiftgrpc" else 0
        assert [flag for flag, _ in big_messages(tap, "response")] == [0, unary, 1, 0, 1]

    asyncio.run(body())


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
