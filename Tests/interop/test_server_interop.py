"""A real grpcio client against the C host on libswiftgrpc (push and pull host paths)."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import ServerProcess, method

ALL_CODES = [c for c in grpc.StatusCode]


def test_unary_echo(channel):
    assert method(channel, "Unary")(b"hello", timeout=10) == b"hello"


def test_empty_message_round_trips(channel):
    assert method(channel, "Unary")(b"", timeout=10) == b""


def test_server_streaming(channel):
    replies = list(method(channel, "ServerStream", "unary_stream")(b"5:3", timeout=10))
    assert replies == [b"aaa", b"bbb", b"ccc", b"ddd", b"eee"]


def test_client_streaming(channel):
    reply = method(channel, "ClientStream", "stream_unary")(iter([b"ab", b"cde", b""]), timeout=10)
    assert reply == b"3:5"


def test_client_streaming_with_no_messages(channel):
    assert method(channel, "ClientStream", "stream_unary")(iter([]), timeout=10) == b"0:0"


def test_bidi_streaming(channel):
    msgs = [f"m{i}".encode() for i in range(50)]
    assert list(method(channel, "Bidi", "stream_stream")(iter(msgs), timeout=10)) == msgs


def test_bidi_ping_pong(channel):
    """Each reply arrives before the next request is sent: messages flow one at a time."""
    outbox = []
    cv = threading.Condition()

    def requests():
        for i in range(10):
            with cv:
                outbox.append(i)
            yield str(i).encode()
            with cv:
                assert cv.wait_for(lambda: len(got) > i, timeout=5)

    got = []
    for reply in method(channel, "Bidi", "stream_stream")(requests(), timeout=10):
        with cv:
            got.append(reply)
            cv.notify_all()
    assert got == [str(i).encode() for i in range(10)]


def test_metadata_both_ways_with_binary(channel):
    blob = bytes(range(256))
    md = [("x-text", "hello world"), ("x-blob-bin", blob), ("x-multi", "one"), ("x-multi", "two")]
    reply, call = method(channel, "Unary").with_call(b"m", metadata=md, timeout=10)
    assert reply == b"m"
    initial = call.initial_metadata()
    trailing = call.trailing_metadata()
    assert ("echo-x-text", "hello world") in initial
    assert ("echo-x-blob-bin", blob) in initial
    assert [v for k, v in initial if k == "echo-x-multi"] == ["one", "two"]
    assert ("trailer-x-text", "hello world") in trailing
    assert ("trailer-x-blob-bin", blob) in trailing
    assert ("echo-user-agent", ) not in initial


@pytest.mark.parametrize("code", ALL_CODES, ids=lambda c: c.name)
def test_every_status_code_with_exotic_message(channel, code):
    text = "héllo\twörld\r\nline two ✓ 100% done"
    request = f"{code.value[0]}:{text}".encode()
    if code == grpc.StatusCode.OK:
        _, call = method(channel, "Status").with_call(request, timeout=10)
        assert call.code() == grpc.StatusCode.OK
        return
    with pytest.raises(grpc.RpcError) as info:
        method(channel, "Status")(request, timeout=10)
    assert info.value.code() == code
    assert info.value.details() == text


def test_rich_status_set_by_a_c_host_reaches_grpcio_status(channel):
    """A C host's grpc-status-details-bin trailer, read back with grpcio-status."""
    rpc_status = pytest.importorskip("grpc_status.rpc_status")
    from google.rpc import status_pb2
    details = status_pb2.Status(code=9, message="not now").SerializeToString()
    with pytest.raises(grpc.RpcError) as info:
        method(channel, "Status")(b"9:not now", metadata=[("x-details-bin", details)], timeout=10)
    status = rpc_status.from_call(info.value)
    assert status is not None and (status.code, status.message) == (9, "not now")


def test_unknown_method_is_unimplemented(channel):
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/no.Such/Method")(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/no.Such/Method" in info.value.details()


def test_deadline_on_slow_method_tells_host(channel):
    with pytest.raises(grpc.RpcError) as info:
        method(channel, "Slow")(b"2000", timeout=0.1)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The host was told: its log gets a CANCELLED event with DEADLINE_EXCEEDED (4) or
    # CANCELLED (1) when the client's RST_STREAM arrives first.
    log = wait_for_log(channel, "CANCELLED /swiftgrpc.test.Test/Slow")
    assert "CANCELLED /swiftgrpc.test.Test/Slow 4" in log or "CANCELLED /swiftgrpc.test.Test/Slow 1" in log


def wait_for_log(channel, needle, timeout=5.0):
    end = time.monotonic() + timeout
    while True:
        log = method(channel, "Log")(b"", timeout=10).decode()
        if needle in log or time.monotonic() > end:
            return log
        time.sleep(0.02)


def test_client_cancel_mid_stream_tells_host(channel):
    ready = threading.Event()

    def requests():
        yield b"first"
        ready.wait(5)
        time.sleep(10)  # never sends more; the cancel ends it
        yield b"never"

    call = method(channel, "Bidi", "stream_stream")(requests(), timeout=30)
    assert next(call) == b"first"
    ready.set()
    call.cancel()
    assert call.code() == grpc.StatusCode.CANCELLED
    assert "CANCELLED /swiftgrpc.test.Test/Bidi 1" in wait_for_log(
        channel, "CANCELLED /swiftgrpc.test.Test/Bidi")


def test_four_mib_messages_each_way(channel):
    big = bytes(range(256)) * (4 * 1024 * 1024 // 256 - 1)  # 4 MiB less 256 B (under the limit)
    assert method(channel, "Unary")(big, timeout=30) == big
    replies = list(method(channel, "ServerStream", "unary_stream")(b"2:4000000", timeout=30))
    assert [len(r) for r in replies] == [4000000, 4000000]


def test_message_over_limit_is_resource_exhausted(channel):
    with pytest.raises(grpc.RpcError) as info:
        method(channel, "Unary")(b"x" * (4 * 1024 * 1024 + 1), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The server is still fine afterwards.
    assert method(channel, "Unary")(b"ok", timeout=10) == b"ok"


def test_thousand_concurrent_calls_on_one_connection(channel):
    call = method(channel, "Unary")
    futures = [call.future(str(i).encode(), timeout=30) for i in range(1000)]
    assert [f.result() for f in futures] == [str(i).encode() for i in range(1000)]


def test_slow_host_does_not_slow_other_calls(channel):
    """64 calls that each take 50 ms on the host's threads overlap; a fast call is not held up."""
    slow = method(channel, "Slow")
    start = time.monotonic()
    futures = [slow.future(b"50", timeout=30) for _ in range(64)]
    fast_start = time.monotonic()
    assert method(channel, "Unary")(b"fast", timeout=10) == b"fast"
    fast_elapsed = time.monotonic() - fast_start
    assert all(f.result() == b"50" for f in futures)
    elapsed = time.monotonic() - start
    assert elapsed < 64 * 0.050 / 2, f"64 slow calls took {elapsed:.2f}s: they were serialised"
    assert fast_elapsed < 64 * 0.050 / 2


def test_answer_inside_host_fn(channel):
    assert method(channel, "Inline")(b"inline", timeout=10) == b"inline"


def test_misuse_of_a_token_is_refused_and_harmless(push_server):
    with grpc.insecure_channel(push_server.target) as ch:
        reply, call = method(ch, "Misuse").with_call(b"", timeout=10)
        assert call.code() == grpc.StatusCode.OK
        assert reply == b"first"  # the second message of a unary call was refused
        report = dict(
            line.split("=") for line in dict(call.trailing_metadata())["report-bin"].decode().split())
        assert report == {
            "read_on_unary": "-6", "bad_key": "-4", "reserved_key": "-4", "bad_value": "-4",
            "null_metadata": "-1", "bad_utf8": "-5", "bad_code": "-3", "null_message": "-1",
            "unknown_token": "-7", "wrong_server": "-2", "send_one": "0", "send_two": "-6",
        }
        log = wait_for_log(ch, "MISUSE")
        # A second complete: already completed (-9), or the call is over (-8); the send after it
        # the same, or over (-8) if the loop ended the call in between (never the other way).
        assert any(f"MISUSE again={a} send_after={b}" in log
                   for a, b in (("-9", "-9"), ("-9", "-8"), ("-8", "-8"))), log
        assert log.count("MISUSE ") == 1, log  # the handler ran for the CALL only


def test_shutdown_and_destroy_inside_host_fn_are_refused(push_server):
    with grpc.insecure_channel(push_server.target) as ch:
        reply = method(ch, "Reenter")(b"", timeout=10)
        assert reply == b"shutdown=-13 destroy=-13 runtime_destroy=-13"
        assert method(ch, "Unary")(b"still serving", timeout=10) == b"still serving"


def test_unix_socket(tmp_path):
    path = tmp_path / "s.sock"
    s = ServerProcess("--listen", f"unix:{path}")
    try:
        with grpc.insecure_channel(f"unix:{path}") as ch:
            assert method(ch, "Unary")(b"over unix", timeout=10) == b"over unix"
    finally:
        code, out, _ = s.stop()
    assert code == 0


def test_graceful_shutdown_with_unanswered_calls():
    """Calls the host never answers: shutdown ends within the grace period, the clients get
    UNAVAILABLE (or CANCELLED), the host is told, and no callback runs after destroy."""
    s = ServerProcess("--grace-ms", "300")
    ch = grpc.insecure_channel(s.target)
    never = method(ch, "Never")
    futures = [never.future(b"", timeout=30) for _ in range(5)]
    log = ""
    end = time.monotonic() + 10
    while log.count("NEVER") < 5 and time.monotonic() < end:
        log = method(ch, "Log")(b"", timeout=10).decode()
    assert log.count("NEVER") == 5
    start = time.monotonic()
    code, out, err = s.stop()
    codes = {f.exception().code() for f in futures}
    assert codes <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, codes
    assert code == 0, err
    fields = dict(kv.split("=") for kv in out.split()[1:])
    assert 250 <= int(fields["shutdown_ms"]) < 5000, out
    assert int(fields["cancelled"]) == 5, out
    assert fields["callbacks_after_destroy"] == "0"
    assert time.monotonic() - start < 10
    ch.close()


def test_graceful_shutdown_lets_calls_finish():
    s = ServerProcess("--grace-ms", "5000")
    ch = grpc.insecure_channel(s.target)
    slow = method(ch, "Slow").future(b"300", timeout=30)
    time.sleep(0.1)  # let the call reach the server before shutdown begins
    code, out, err = s.stop()
    assert slow.result() == b"300"
    assert code == 0 and "cancelled=0" in out, out
    ch.close()


def test_host_process_exit_under_load_does_not_crash():
    s = ServerProcess("--exit-after-ms", "700")
    stop = threading.Event()

    def hammer():
        with grpc.insecure_channel(s.target) as ch:
            call = method(ch, "Unary")
            while not stop.is_set():
                try:
                    call(b"load", timeout=2)
                except grpc.RpcError:
                    return

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(hammer)
        code = s.proc.wait(timeout=20)
        stop.set()
    out = s.proc.stdout.read()
    assert code == 0, f"exit code {code} ({s.proc.stderr.read()[-2000:]})"
    assert "exiting without shutdown" in out


def test_unread_request_stream_exerts_back_pressure(channel):
    """The host never calls swiftgrpc_call_read: the library stops reopening the HTTP/2 window,
    so the client cannot push 16 MiB; it stalls after about one window (1 MiB) plus a message."""
    chunk = b"z" * (256 * 1024)
    sent = []

    def requests():
        for i in range(64):
            sent.append(i)
            yield chunk

    future = method(channel, "Hold", "stream_unary").future(requests(), timeout=30)
    wait_for_log(channel, "HOLD")
    time.sleep(1.0)  # give an unbounded reader ample time to swallow all 16 MiB
    stalled_at = len(sent)
    future.cancel()
    assert stalled_at < 16, f"client pushed {stalled_at} x 256 KiB with nobody reading"
    assert "CANCELLED /swiftgrpc.test.Test/Hold 1" in wait_for_log(
        channel, "CANCELLED /swiftgrpc.test.Test/Hold")
