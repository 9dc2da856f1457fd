"""The swiftgrpc client against a grpcio server: bad input, closed channels, unreachable
servers, wait-for-ready, connectivity, the Call interface."""
import socket
import threading
import time

import grpc
import pytest

import svc_pb2
import svc_pb2_grpc
import swiftgrpc
from conftest import make_server

Msg = svc_pb2.Msg


@pytest.fixture(scope="module")
def grpcio_target():
    server, target = make_server("grpcio")
    yield target
    server.stop(None)


@pytest.fixture
def channel(grpcio_target):
    with swiftgrpc.insecure_channel(grpcio_target) as ch:
        yield ch


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_status_code_enum_matches_grpcio():
    assert [c.name for c in swiftgrpc.StatusCode] == [c.name for c in grpc.StatusCode]
    for ours, theirs in zip(swiftgrpc.StatusCode, grpc.StatusCode):
        assert ours.value[0] == theirs.value[0] and ours.value[1] == theirs.value[1]
        assert ours == theirs and theirs == ours
    assert swiftgrpc.StatusCode.OK != grpc.StatusCode.CANCELLED
    assert issubclass(swiftgrpc.RpcError, grpc.RpcError)


def test_wrong_types_are_refused(channel):
    echo = channel.unary_unary("/swiftgrpc.pytest.Svc/Unary")
    with pytest.raises(TypeError, match="request must be bytes"):
        echo("a str")
    with pytest.raises(TypeError, match="request_iterator must be iterable"):
        channel.stream_unary("/swiftgrpc.pytest.Svc/ClientStream")(42)
    with pytest.raises(TypeError, match="request_iterator must be iterable"):
        channel.stream_stream("/swiftgrpc.pytest.Svc/Bidi")(None)
    with pytest.raises(TypeError, match="method must be str"):
        channel.unary_unary(b"/x/y")
    with pytest.raises(TypeError, match="timeout"):
        echo(b"", timeout="soon")
    with pytest.raises(TypeError):
        swiftgrpc.insecure_channel(1234)


@pytest.mark.parametrize("md,exc", [
    ([("Upper", "v")], ValueError),
    ([("grpc-status", "0")], ValueError),
    ([(":path", "/x")], ValueError),
    ([("k", "line\nbreak")], ValueError),
    ([("k", "ünï")], ValueError),
    ([("k", 5)], TypeError),
    ([("k",)], TypeError),
    (5, TypeError),
])
def test_invalid_metadata_is_refused(channel, md, exc):
    with pytest.raises(exc):
        channel.unary_unary("/swiftgrpc.pytest.Svc/Unary")(b"", metadata=md)
    # the channel is unharmed
    stub = svc_pb2_grpc.SvcStub(channel)
    assert stub.Unary(Msg(text="echo")).text == "echo"


@pytest.mark.parametrize("timeout", [0, -1, -0.5])
def test_non_positive_deadlines_are_refused(channel, timeout):
    with pytest.raises(ValueError, match="timeout must be > 0"):
        svc_pb2_grpc.SvcStub(channel).Unary(Msg(text="echo"), timeout=timeout)


@pytest.mark.parametrize("timeout", [1e12, 1e300, float("inf"), 2 ** 63, 9.3e9])
def test_huge_deadlines_work(channel, timeout):
    """A deadline centuries away is no deadline: the call is answered (it used to kill the
    process on an overflow trap in the library)."""
    assert svc_pb2_grpc.SvcStub(channel).Unary(Msg(text="echo"), timeout=timeout).text == "echo"


def test_nan_deadline_is_refused(channel):
    with pytest.raises(ValueError, match="NaN"):
        svc_pb2_grpc.SvcStub(channel).Unary(Msg(text="echo"), timeout=float("nan"))


def test_closed_channel_refuses_calls(grpcio_target):
    ch = swiftgrpc.insecure_channel(grpcio_target)
    stub = svc_pb2_grpc.SvcStub(ch)
    assert stub.Unary(Msg(text="echo")).text == "echo"
    ch.close()
    ch.close()  # idempotent
    with pytest.raises(swiftgrpc.UsageError, match="closed"):
        stub.Unary(Msg(text="echo"))
    with pytest.raises(swiftgrpc.UsageError):
        list(stub.ServerStream(Msg(n=2)))


def test_close_cancels_calls_in_flight(grpcio_target):
    ch = swiftgrpc.insecure_channel(grpcio_target)
    it = svc_pb2_grpc.SvcStub(ch).ServerStream(Msg(text="sleep:0.05:close-test", n=1000))
    assert next(it).text == "0"
    ch.close()
    with pytest.raises(grpc.RpcError) as e:
        list(it)
    assert e.value.code() == grpc.StatusCode.CANCELLED


def test_unreachable_server_is_unavailable():
    with swiftgrpc.insecure_channel(f"127.0.0.1:{free_port()}") as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/x.Y/Z")(b"", timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_wait_for_ready_waits_for_the_server():
    port = free_port()
    result = {}
    with swiftgrpc.insecure_channel(f"127.0.0.1:{port}",
                                    options=[("grpc.initial_reconnect_backoff_ms", 100),
                                             ("grpc.max_reconnect_backoff_ms", 200)]) as ch:
        stub = svc_pb2_grpc.SvcStub(ch)

        def call():
            result["r"] = stub.Unary(Msg(text="echo"), timeout=10, wait_for_ready=True).text

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.5)
        assert t.is_alive(), "the call did not wait for the server"
        server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(4))
        svc_pb2_grpc.add_SvcServicer_to_server(__import__("servicer").Servicer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        t.join(10)
        server.stop(None)
    assert result.get("r") == "echo"


def test_connectivity_states(grpcio_target):
    with swiftgrpc.insecure_channel(grpcio_target) as ch:
        assert ch.get_state() == swiftgrpc.ChannelConnectivity.IDLE
        assert ch.wait_for_ready(timeout=5)
        assert ch.get_state() == swiftgrpc.ChannelConnectivity.READY


def test_streaming_call_interface(channel):
    stub = svc_pb2_grpc.SvcStub(channel)
    call = stub.ServerStream(Msg(n=3))
    assert call.is_active()
    assert [m.text for m in call] == ["0", "1", "2"]
    assert call.code() == grpc.StatusCode.OK
    assert not call.is_active()
    assert call.cancel() is False
    resp, c = stub.ClientStream.with_call(iter([Msg(text="a")]), metadata=[("x-k", "v")])
    assert resp.text == "a" and c.code() == grpc.StatusCode.OK


def test_failing_request_iterator_cancels_the_call(channel):
    def requests():
        yield Msg(text="a")
        raise RuntimeError("producer broke")

    with pytest.raises((grpc.RpcError, RuntimeError)):
        svc_pb2_grpc.SvcStub(channel).ClientStream(requests(), timeout=10)


def test_max_receive_message_length(grpcio_target):
    with swiftgrpc.insecure_channel(grpcio_target, options=[("grpc.max_receive_message_length", 100)]) as ch:
        with pytest.raises(grpc.RpcError) as e:
            svc_pb2_grpc.SvcStub(ch).Unary(Msg(text="echo", data=b"x" * 200))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_abandoned_response_iterator_is_cancelled_and_collected(channel):
    import gc
    for _ in range(50):
        it = svc_pb2_grpc.SvcStub(channel).ServerStream(Msg(n=100))
        next(it)
        del it
    gc.collect()
    assert svc_pb2_grpc.SvcStub(channel).Unary(Msg(text="echo")).text == "echo"
