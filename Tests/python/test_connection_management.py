"""Connection management on a swiftgrpc server (gRFCs A8 and A9), with grpcio clients through the
relay that records the wire and with a raw HTTP/2 peer: max connection age and idle (GOAWAY
"max_age" / "max_idle", calls move to a new connection, none fails), the two-step graceful
GOAWAY, server keepalive (a client that stops answering PINGs is dropped and its calls' handlers
are told), and ping enforcement (too many pings end in GOAWAY ENHANCE_YOUR_CALM
"too_many_pings")."""
import os
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest

import svc_pb2
import svc_pb2_grpc
import swiftgrpc
from servicer import LOG, Servicer, log_event, started_event
from wiretap import WireTap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile"))
import h2raw  # noqa: E402

Msg = svc_pb2.Msg
NO_ERROR, ENHANCE_YOUR_CALM = 0x0, 0xB
LAST_STREAM = (1 << 31) - 1


def swift_server(options):
    server = swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def wait_for(predicate, timeout=10):
    """Polls a condition that an event elsewhere (a frame on the wire) makes true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_max_connection_age_moves_calls_to_a_new_connection_and_none_fails():
    server, port = swift_server([("grpc.max_connection_age_ms", 300),
                                 ("grpc.max_connection_age_grace_ms", 10000)])
    tap = WireTap(port)
    try:
        with grpc.insecure_channel(tap.target) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            calls = 0
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len([g for g in tap.goaways("response")
                                                       if g[0] == LAST_STREAM]) < 2:
                assert stub.Unary(Msg(text="echo", data=b"x"), timeout=10).data == b"x"
                calls += 1
            assert stub.Unary(Msg(text="echo", data=b"y"), timeout=10).data == b"y"
        # Every call answered, on ever newer connections. Each aged connection got the first
        # step of the graceful GOAWAY (the largest stream id), then, if the client kept it
        # open for its calls, the second with the last stream processed, saying "max_age".
        goaways = tap.goaways("response")
        assert len([g for g in goaways if g[0] == LAST_STREAM]) >= 2 and tap.connections >= 2
        assert all(code == NO_ERROR and debug in (b"", b"max_age") for _, code, debug in goaways)
        assert all(debug == b"max_age" for last, _, debug in goaways if last != LAST_STREAM)
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_max_connection_age_grace_ends_calls_that_outlive_it():
    key = f"age-grace-{time.monotonic_ns()}"
    server, port = swift_server([("grpc.max_connection_age_ms", 200),
                                 ("grpc.max_connection_age_grace_ms", 300)])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.RpcError) as err:
                svc_pb2_grpc.SvcStub(ch).Unary(Msg(text=f"sleep:30:{key}"), timeout=20)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert log_event(key).wait(10) and LOG[key][0] == "cancelled"
    finally:
        server.stop(None).wait(10)


def test_max_connection_idle_sends_goaway_and_the_next_call_reconnects():
    server, port = swift_server([("grpc.max_connection_idle_ms", 200)])
    tap = WireTap(port)
    try:
        with grpc.insecure_channel(tap.target) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            assert stub.Unary(Msg(text="echo", data=b"1"), timeout=10).data == b"1"
            assert wait_for(lambda: tap.goaways("response"))
            assert stub.Unary(Msg(text="echo", data=b"2"), timeout=10).data == b"2"
        assert tap.connections == 2
        goaways = tap.goaways("response")
        assert goaways[0][:2] == (LAST_STREAM, NO_ERROR), goaways
        assert all(debug in (b"", b"max_idle") for _, _, debug in goaways)
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_a_busy_connection_is_not_idle():
    key = f"idle-busy-{time.monotonic_ns()}"
    server, port = swift_server([("grpc.max_connection_idle_ms", 100)])
    tap = WireTap(port)
    try:
        with grpc.insecure_channel(tap.target) as ch:
            reply = svc_pb2_grpc.SvcStub(ch).Unary(Msg(text=f"sleep:0.5:{key}"), timeout=10)
            assert reply.text == "slept"
            assert not tap.goaways("response"), "GOAWAY while a call was open"
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_graceful_shutdown_goes_away_in_two_steps_and_the_call_in_flight_finishes():
    key = f"two-step-{time.monotonic_ns()}"
    server, port = swift_server([])
    tap = WireTap(port)
    try:
        with grpc.insecure_channel(tap.target) as ch:
            fut = svc_pb2_grpc.SvcStub(ch).Unary.future(Msg(text=f"sleep:0.5:{key}"), timeout=10)
            assert started_event(key).wait(10)  # its handler runs when the shutdown begins
            stopped = server.stop(5)
            assert fut.result(timeout=10).text == "slept"
            assert stopped.wait(10)
        g = tap.goaways("response")
        assert len(g) == 2 and g[0][0] == LAST_STREAM and g[1][0] == 1, g
        assert all(code == NO_ERROR for _, code, _ in g)
    finally:
        tap.close()


def test_a_client_that_stops_answering_pings_is_dropped_and_its_handler_told():
    key = f"keepalive-{time.monotonic_ns()}"
    server, port = swift_server([("grpc.keepalive_time_ms", 100), ("grpc.keepalive_timeout_ms", 200)])
    peer = h2raw.RawH2(port)
    try:
        peer.start()
        peer.unary("/swiftgrpc.pytest.Svc/Unary", Msg(text=f"sleep:30:{key}").SerializeToString())
        ping = peer.until(lambda f: f.type == h2raw.PING and not f.flags & h2raw.ACK, timeout=5)
        assert ping is not None, "no keepalive ping"
        # ... never acknowledged: the server closes the connection, and the handler hears of it.
        started = time.monotonic()
        assert peer.until(lambda f: False, timeout=5) is None and peer.closed
        assert time.monotonic() - started < 3
        assert log_event(key).wait(10) and LOG[key][0] == "cancelled"
    finally:
        peer.close()
        server.stop(None).wait(10)


def pinger(port, count, every, **settings):
    """A raw peer that, with no call open, sends `count` PINGs `every` seconds apart; returns the
    GOAWAY frame the server ended with (None if none came) and the acks it got."""
    peer = h2raw.RawH2(port)
    acks = 0
    try:
        peer.start(**settings)
        for i in range(count):
            peer.send(h2raw.frame(h2raw.PING, 0, 0, i.to_bytes(8, "big")))
            f = peer.until(lambda f: f.type in (h2raw.GOAWAY,) or (f.type == h2raw.PING and f.flags & h2raw.ACK),
                           timeout=5)
            if f is None or f.type == h2raw.GOAWAY:
                return f, acks
            acks += 1
            time.sleep(every)  # the pacing under test, not a synchronisation
        return None, acks
    finally:
        peer.close()


def test_too_many_pings_end_in_enhance_your_calm():
    server, port = swift_server([])  # C-core's defaults: no ping without a call within 2 hours
    try:
        goaway, acks = pinger(port, 10, 0)
        assert goaway is not None and goaway.error_code == ENHANCE_YOUR_CALM
        assert goaway.payload[8:] == b"too_many_pings"
        assert acks == 3  # the first, then two strikes; the third strike is one too many
    finally:
        server.stop(None).wait(10)


def test_pings_at_the_permitted_interval_are_fine():
    server, port = swift_server([("grpc.keepalive_permit_without_calls", 1),
                                 ("grpc.http2.min_ping_interval_without_data_ms", 50)])
    try:
        goaway, acks = pinger(port, 5, 0.08)
        assert goaway is None and acks == 5
    finally:
        server.stop(None).wait(10)


def test_a_grpcio_client_pinging_too_often_is_told_too_many_pings_and_still_served():
    server, port = swift_server([])
    tap = WireTap(port)
    try:
        options = [("grpc.keepalive_time_ms", 20), ("grpc.keepalive_permit_without_calls", 1),
                   ("grpc.http2.max_pings_without_data", 0)]
        with grpc.insecure_channel(tap.target, options=options) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            assert stub.Unary(Msg(text="echo", data=b"a"), timeout=10).data == b"a"
            assert wait_for(lambda: any(code == ENHANCE_YOUR_CALM and debug == b"too_many_pings"
                                        for _, code, debug in tap.goaways("response")))
            assert stub.Unary(Msg(text="echo", data=b"b"), timeout=10).data == b"b"
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_bad_connection_options_are_refused():
    for key, bad in (("grpc.keepalive_timeout_ms", 0), ("grpc.keepalive_permit_without_calls", 2),
                     ("grpc.http2.max_ping_strikes", -1), ("grpc.max_connection_age_ms", -5)):
        with pytest.raises(ValueError):
            swiftgrpc.server(options=[(key, bad)])


def test_so_reuseport_lets_two_servers_share_a_port_only_when_asked():
    first, port = swift_server([("grpc.so_reuseport", 1)])
    try:
        second = swiftgrpc.server(options=[("grpc.so_reuseport", 1)])
        svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), second)
        assert second.add_insecure_port(f"127.0.0.1:{port}") == port
        second.start()
        plain = swiftgrpc.server()  # the default: a port in use is an error
        with pytest.raises(RuntimeError, match="bind"):
            plain.add_insecure_port(f"127.0.0.1:{port}")
        first.stop(None).wait(10)  # the second still serves the port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            assert svc_pb2_grpc.SvcStub(ch).Unary(Msg(text="echo", data=b"r"), timeout=10).data == b"r"
        second.stop(None).wait(10)
    finally:
        first.stop(None).wait(10)
