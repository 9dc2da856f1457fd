"""A client that does not read: its stream window stays 0 while the handler streams. The server
must pace the handler (SEND_DONE), not buffer its stream: memory stays flat, other clients on
the same loop are answered, and a client that goes away cancels the handler within a second,
after which its sends are refused."""
import time

import h2raw
from conftest import MIB, TEST, GoodClient, c_host, stats


def open_stalled_stream(host, count=1_000_000, size=1024):
    """A server stream of `count` x `size` bytes to a client whose window is 0."""
    c = h2raw.RawH2(host.port)
    c.start(initial_window_size=0)
    s = c.new_stream()
    c.headers(s, h2raw.request_headers(TEST + "ServerStream"))
    c.data(s, h2raw.grpc_message(f"{count}:{size}".encode()), end_stream=True)
    assert c.until(lambda f: f.type == h2raw.HEADERS and f.stream == s) is not None, "no response headers"
    return c, s


def test_window_zero_reader_holds_the_handler_not_the_memory(host, record):
    rss0 = host.rss()
    c, _ = open_stalled_stream(host)
    with GoodClient(host.target) as good:
        t0 = time.monotonic()
        grown = 0
        while time.monotonic() - t0 < 4:  # the handler has 1M messages to send
            grown = max(grown, host.rss() - rss0)
            time.sleep(0.2)
    sent = stats(host.target)
    record(f"{host.kind}: RSS growth (MiB), messages the handler sent, worst good call (ms)",
           [round(grown / MIB, 2), sent, round(good.worst * 1000, 1)])
    assert grown <= 4 * MIB, f"RSS grew by {grown / MIB:.1f} MiB while the client read nothing"
    assert sent <= 64, f"the handler was allowed {sent} messages into a closed window"
    good.assert_served(within=0.5)
    c.close()


def test_client_gone_mid_stream_cancels_the_handler_within_a_second(host, record):
    c, s = open_stalled_stream(host)
    mark = len(host.lines)
    t0 = time.monotonic()
    c.close()
    line = host.wait_line("CANCELLED", timeout=5, start=mark)
    assert line is not None, f"the handler was not told: {host.lines[mark:]}"
    told = time.monotonic() - t0
    record(f"{host.kind}: handler told after (ms)", round(told * 1000, 1))
    assert told < 1.0
    if host.kind == "c":  # the C host tries one more send: refused, E_TOKEN_CLOSED
        refused = host.wait_line("SEND_AFTER_CANCEL", timeout=5, start=mark)
        assert refused is not None and refused.split()[-1] == "-8", refused
    else:  # the Python generator is not pulled again
        before = stats(host.target)
        time.sleep(0.3)
        assert stats(host.target) == before


def test_reset_mid_stream_cancels_the_handler():
    host = c_host()
    try:
        c, s = open_stalled_stream(host)
        mark = len(host.lines)
        c.rst(s)
        assert host.wait_line("CANCELLED " + TEST + "ServerStream 1", timeout=2, start=mark)
        assert host.wait_line("SEND_AFTER_CANCEL -8", timeout=2, start=mark)
        # The connection itself goes on.
        assert c.unary(TEST + "Unary", b"after")
        c.close()
    finally:
        host.stop()


def test_a_reader_that_opens_its_window_gets_everything(host):
    """Back-pressure paces; it loses nothing: 2000 x 1 KiB through a 16 KiB window."""
    c = h2raw.RawH2(host.port)
    c.start(initial_window_size=16384)
    s = c.new_stream()
    c.headers(s, h2raw.request_headers(TEST + "ServerStream"))
    c.data(s, h2raw.grpc_message(b"2000:1024"), end_stream=True)
    received = 0
    trailers = None
    deadline = time.monotonic() + 30
    while trailers is None and time.monotonic() < deadline:
        f = c.until(lambda f: f.stream in (0, s), timeout=10)
        assert f is not None, "the stream stalled"
        if f.type == h2raw.DATA:
            received += len(f.payload)
            # Give the window back only now: the server must wait for it.
            inc = len(f.payload).to_bytes(4, "big")
            c.send(h2raw.frame(h2raw.WINDOW_UPDATE, 0, s, inc) + h2raw.frame(h2raw.WINDOW_UPDATE, 0, 0, inc))
        elif f.type == h2raw.HEADERS and f.flags & h2raw.END_STREAM:
            trailers = f.headers
    assert trailers is not None and trailers.get("grpc-status") == "0", trailers
    assert received == 2000 * (1024 + 5)
    c.close()
