"""Every combination of server (grpcio, swiftgrpc) and client (grpcio, swiftgrpc) through the
code grpcio-tools generated (svc_pb2_grpc): the swiftgrpc rows are the drop-in claim, and the
grpcio x grpcio row shows each expectation is grpcio's own behaviour."""
import threading
import time
from concurrent import futures

import grpc
import pytest

import svc_pb2
import swiftgrpc
from servicer import LOG, log_event

Msg = svc_pb2.Msg
ALL_CODES = [c for c in grpc.StatusCode if c != grpc.StatusCode.OK]
EXOTIC = ["", "plain", "ünïcödé ✓ 日本", "with\nnewline\r\nand\ttab", " edge spaces ",
          "percent % %25 %zz", "a" * 3000]


def test_unary_echo_with_metadata_both_ways(stub):
    md = [("x-text", "hello"), ("x-data-bin", bytes(range(256))), ("x-text", "again")]
    resp, call = stub.Unary.with_call(Msg(text="echo", data=b"\x00\x01payload"), metadata=md)
    assert resp.text == "echo" and resp.data == b"\x00\x01payload"
    trailers = [tuple(m) for m in call.trailing_metadata() if m[0].startswith("x-")]
    assert trailers == md
    assert call.code() == grpc.StatusCode.OK


def test_initial_metadata(stub):
    resp, call = stub.Unary.with_call(Msg(text="initial-md"))
    md = dict((k, v) for k, v in call.initial_metadata())
    assert md["x-initial"] == "1" and md["x-initial-bin"] == b"\x00\xff"


def test_server_streaming(stub):
    got = [m.text for m in stub.ServerStream(Msg(n=50, data=b"z" * 100))]
    assert got == [str(i) for i in range(50)]


def test_client_streaming(stub):
    resp = stub.ClientStream(iter([Msg(text=str(i), data=b"%d" % i) for i in range(20)]))
    assert resp.text == ",".join(str(i) for i in range(20)) and resp.n == 20
    assert resp.data == b"".join(b"%d" % i for i in range(20))


def test_client_streaming_empty(stub):
    assert stub.ClientStream(iter([])).n == 0


def test_bidi_streaming(stub):
    got = [m.text for m in stub.Bidi(iter([Msg(text=t) for t in ["a", "b", "c"] * 10]))]
    assert got == ["A", "B", "C"] * 10


def test_bidi_with_generator_pacing(stub):
    """Requests produced lazily while responses are read: a real conversation."""
    seen = []

    def requests():
        for i in range(5):
            yield Msg(text=f"m{i}")
            while len(seen) < i + 1:  # wait for the answer to this one
                time.sleep(0.001)

    for m in stub.Bidi(requests()):
        seen.append(m.text)
    assert seen == [f"M{i}" for i in range(5)]


@pytest.mark.parametrize("code", ALL_CODES, ids=lambda c: c.name)
def test_every_status_code(stub, code):
    with pytest.raises(grpc.RpcError) as e:
        stub.Unary(Msg(text=f"status:{code.name}:failure {code.name}"))
    assert e.value.code() == code
    assert e.value.details() == f"failure {code.name}"


@pytest.mark.parametrize("message", EXOTIC, ids=range(len(EXOTIC)))
def test_exotic_status_messages(stub, message):
    with pytest.raises(grpc.RpcError) as e:
        stub.Unary(Msg(text=f"status:FAILED_PRECONDITION:{message}"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == message


def test_handler_set_code_without_raising(stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.Unary(Msg(text="set-code:ALREADY_EXISTS"))
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert e.value.details() == "chosen by the handler"


def test_deadline_exceeded_and_server_sees_it(stub, server_impl):
    key = f"deadline-{server_impl}-{time.monotonic_ns()}"
    with pytest.raises(grpc.RpcError) as e:
        stub.Unary(Msg(text=f"sleep:10:{key}"), timeout=0.3)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert log_event(key).wait(5), "the handler never learned that its call ended"
    state, remaining = LOG[key]
    assert state == "cancelled"
    assert remaining is not None and 0 < remaining <= 0.35  # grpc-timeout rounds up


def test_deadline_propagates(stub):
    remaining = float(stub.Unary(Msg(text="deadline"), timeout=5).text)
    assert 3.0 < remaining <= 5.1  # peers round grpc-timeout up to compact values
    assert float(stub.Unary(Msg(text="deadline")).text) > 1e9  # no deadline


def test_cancel_server_stream_reaches_server(stub, server_impl):
    key = f"cancel-stream-{server_impl}-{time.monotonic_ns()}"
    it = stub.ServerStream(Msg(text=f"sleep:0.05:{key}", n=1000))
    assert next(it).text == "0"
    it.cancel()
    with pytest.raises(grpc.RpcError) as e:
        for _ in it:
            pass
    assert e.value.code() == grpc.StatusCode.CANCELLED
    assert log_event(key).wait(5), "the server handler was not told of the cancel"


def test_cancel_bidi_reaches_server(stub, server_impl):
    key = f"cancel-bidi-{server_impl}-{time.monotonic_ns()}"
    release = threading.Event()

    def requests():
        yield Msg(text="first")
        yield Msg(text=f"sleep:0.01:{key}")
        release.wait(10)

    it = stub.Bidi(requests())
    assert next(it).text == "FIRST"
    assert next(it).text.startswith("SLEEP")
    it.cancel()
    release.set()
    with pytest.raises(grpc.RpcError) as e:
        next(it)
    assert e.value.code() == grpc.StatusCode.CANCELLED
    assert log_event(key).wait(5), "the server handler was not told of the cancel"


def test_unimplemented_method(client_impl, target):
    mod = grpc if client_impl == "grpcio" else swiftgrpc
    with mod.insecure_channel(target) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/swiftgrpc.pytest.Svc/Nope")(b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_100_concurrent_calls(stub):
    with futures.ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(lambda i: stub.Unary(Msg(text="echo", data=b"%d" % i)).data,
                                range(100)))
    assert results == [b"%d" % i for i in range(100)]


def test_100_concurrent_futures(stub):
    fs = [stub.Unary.future(Msg(text="echo", data=b"%d" % i)) for i in range(100)]
    assert [f.result(timeout=10).data for f in fs] == [b"%d" % i for i in range(100)]


def test_future_error_and_callback(stub):
    f = stub.Unary.future(Msg(text="status:NOT_FOUND:nothing"))
    done = threading.Event()
    f.add_done_callback(lambda fut: done.set())
    assert done.wait(10)
    assert f.exception().code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError):
        f.result()


def test_large_messages_both_ways(stub):
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB
    assert stub.Unary(Msg(text="echo", data=big)).data == big
    assert sum(len(m.data) for m in stub.ServerStream(Msg(n=4, data=big))) == 4 * len(big)


def test_peer_is_reported(stub):
    assert stub.Unary(Msg(text="peer")).text.startswith(("ipv4:127.0.0.1:", "ipv6:"))
