"""gRPC's official compression interop cases (doc/interop-test-descriptions.md:
client_compressed_unary, client_compressed_streaming, server_compressed_unary,
server_compressed_streaming) on the interop service (protos/grpc_testing.proto), between grpcio
and swiftgrpc both ways and swiftgrpc with itself, asserting on the wire through the relay: the
compressed flag of each message and grpc-encoding, not only the replies.

The server side of the cases is one servicer for both implementations. Its CompressedRequest
check (expect_compressed set, the request not compressed: INVALID_ARGUMENT) needs to know how a
request arrived: swiftgrpc's context.request_compressed() says; grpcio has no such call, so a
grpcio server skips the check (the cases' probe then succeeds, which the descriptions allow for
servers that cannot introspect), and the relay checks the flags instead."""
from concurrent import futures

import grpc
import pytest

import grpc_testing_pb2 as pb
import grpc_testing_pb2_grpc as pb_grpc
import swiftgrpc
from wiretap import WireTap

GZIP, NONE = grpc.Compression.Gzip, grpc.Compression.NoCompression


def zeros(n):
    return pb.Payload(type=pb.COMPRESSABLE, body=bytes(n))


class InteropServicer(pb_grpc.TestServiceServicer):
    @staticmethod
    def _check_compressed(expect, context):
        inspect = getattr(context, "request_compressed", None)  # swiftgrpc only
        if inspect is not None and expect.value and not inspect():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Expected compressed request")

    def UnaryCall(self, request, context):
        if request.HasField("expect_compressed"):
            self._check_compressed(request.expect_compressed, context)
        if request.HasField("response_compressed"):
            context.set_compression(GZIP if request.response_compressed.value else NONE)
        return pb.SimpleResponse(payload=zeros(request.response_size))

    def StreamingInputCall(self, request_iterator, context):
        total = 0
        for r in request_iterator:
            if r.HasField("expect_compressed"):
                self._check_compressed(r.expect_compressed, context)
            total += len(r.payload.body)
        return pb.StreamingInputCallResponse(aggregated_payload_size=total)

    def StreamingOutputCall(self, request, context):
        if any(p.HasField("compressed") for p in request.response_parameters):
            context.set_compression(GZIP)
        for p in request.response_parameters:
            if p.HasField("compressed") and not p.compressed.value:
                context.disable_next_message_compression()
            yield pb.StreamingOutputCallResponse(payload=zeros(p.size))


def wire(tap, direction):
    """(compressed flag, wire length) of each message of `direction`, in order of streams."""
    return [(flag, n) for _, flag, n in tap.messages(direction)]


def encodings(tap, direction):
    key = ":path" if direction == "request" else ":status"
    return [h.get("grpc-encoding") for h in tap.headers(direction) if key in h]


def probe_refused(stub_call, server_impl):
    """The feature probe: an uncompressed request that says it is compressed. A server that can
    tell answers INVALID_ARGUMENT; one that cannot (grpcio) answers OK."""
    if server_impl == "grpcio":
        stub_call()
        return
    with pytest.raises(grpc.RpcError) as err:
        stub_call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def client_compressed_unary(stub, tap, server_impl):
    req = pb.SimpleRequest(expect_compressed=pb.BoolValue(value=True), response_size=314159,
                           payload=zeros(271828))
    probe_refused(lambda: stub.UnaryCall(req, timeout=10), server_impl)
    assert len(stub.UnaryCall(req, timeout=10, compression=GZIP).payload.body) == 314159
    plain = pb.SimpleRequest(expect_compressed=pb.BoolValue(value=False), response_size=314159,
                             payload=zeros(271828))
    assert len(stub.UnaryCall(plain, timeout=10).payload.body) == 314159
    assert encodings(tap, "request") == [None, "gzip", None]
    sent = wire(tap, "request")
    assert [flag for flag, _ in sent] == [0, 1, 0] and sent[1][1] < 1000 and sent[0][1] > 271828


def client_compressed_streaming(stub, tap, server_impl):
    first = pb.StreamingInputCallRequest(expect_compressed=pb.BoolValue(value=True), payload=zeros(27182))
    probe_refused(lambda: stub.StreamingInputCall(iter([first]), timeout=10), server_impl)
    # grpcio's Python API (which swiftgrpc's mirrors) cannot turn compression off for one message
    # of a call, so the compressed and the uncompressed message go in calls of their own.
    assert stub.StreamingInputCall(iter([first]), timeout=10,
                                   compression=GZIP).aggregated_payload_size == 27182
    second = pb.StreamingInputCallRequest(expect_compressed=pb.BoolValue(value=False), payload=zeros(45904))
    assert stub.StreamingInputCall(iter([second]), timeout=10).aggregated_payload_size == 45904
    assert encodings(tap, "request") == [None, "gzip", None]
    assert [flag for flag, _ in wire(tap, "request")] == [0, 1, 0]


def server_compressed_unary(stub, tap, server_impl):
    for compressed in (True, False):
        req = pb.SimpleRequest(response_compressed=pb.BoolValue(value=compressed), response_size=314159,
                               payload=zeros(271828))
        assert len(stub.UnaryCall(req, timeout=10).payload.body) == 314159
    got = wire(tap, "response")
    assert [flag for flag, _ in got] == [1, 0] and got[0][1] < 1000


def server_compressed_streaming(stub, tap, server_impl):
    req = pb.StreamingOutputCallRequest(response_parameters=[
        pb.ResponseParameters(compressed=pb.BoolValue(value=True), size=31415),
        pb.ResponseParameters(compressed=pb.BoolValue(value=False), size=92653)])
    sizes = [len(r.payload.body) for r in stub.StreamingOutputCall(req, timeout=10)]
    assert sizes == [31415, 92653]
    assert encodings(tap, "response") == ["gzip"]
    got = wire(tap, "response")
    assert [flag for flag, _ in got] == [1, 0] and got[0][1] < 1000 and got[1][1] > 92653


def serve_tapped(mod):
    """An interop server of `mod` (grpc or swiftgrpc), and a relay recording its wire."""
    server = mod.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_TestServiceServicer_to_server(InteropServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, WireTap(port)


CASES = [client_compressed_unary, client_compressed_streaming, server_compressed_unary,
         server_compressed_streaming]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("server_impl,client_impl", [("swiftgrpc", "grpcio"), ("grpcio", "swiftgrpc"),
                                                     ("swiftgrpc", "swiftgrpc")])
def test_official_compression_case(case, server_impl, client_impl):
    server, tap = serve_tapped(grpc if server_impl == "grpcio" else swiftgrpc)
    try:
        cmod = grpc if client_impl == "grpcio" else swiftgrpc
        # The uncompressed calls use the channel's default: grpcio ignores a call's
        # compression=NoCompression on a channel that compresses (it is falsy).
        with cmod.insecure_channel(tap.target) as ch:
            case(pb_grpc.TestServiceStub(ch), tap, server_impl)
    finally:
        tap.close()
        server.stop(None).wait(10)


def gem_interop_client():
    """The grpc gem's own interop client (src/ruby/pb/test/client.rb, shipped by Debian's
    ruby-grpc), run unchanged."""
    import glob
    found = sorted(glob.glob("/usr/lib/*/rubygems-integration/*/gems/grpc-*/src/ruby/pb/test/client.rb")
                   + glob.glob("/var/lib/gems/*/gems/grpc-*/src/ruby/pb/test/client.rb"))
    if not found:
        pytest.skip("the grpc gem's interop client is not installed (Debian ruby-grpc)")
    return found[-1]


@pytest.mark.parametrize("case", ["client_compressed_unary", "client_compressed_streaming"])
def test_the_gems_interop_client_against_a_swiftgrpc_server(case):
    import subprocess
    server, tap = serve_tapped(swiftgrpc)
    try:
        run = subprocess.run(["ruby", gem_interop_client(), "--server_host=127.0.0.1",
                              f"--server_port={tap.port}", f"--test_case={case}"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and f"OK: {case}" in run.stdout, run.stdout + run.stderr
        # Its probe (uncompressed, expect_compressed) was refused, which the client asserts;
        # then a compressed request, then an uncompressed one: in separate calls for unary, in
        # one call (the second message NO_COMPRESS) for streaming.
        assert [flag for flag, _ in wire(tap, "request")] == [0, 1, 0]
        assert encodings(tap, "request") == ([None, "gzip", None] if case == "client_compressed_unary"
                                             else [None, "gzip"])
    finally:
        tap.close()
        server.stop(None).wait(10)
