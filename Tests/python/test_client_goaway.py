"""The swiftgrpc client facing GOAWAY (gRFC A6's transparent retry, A8's too_many_pings): a
server (a scripted HTTP/2 peer on the h2 library, so that the race is not left to chance) that
takes two calls on one connection and answers GOAWAY naming the first: the first finishes, the
second, never processed, goes again on a new connection and succeeds; and a grpcio server that
tells a pinging client "too_many_pings" gets pinged half as often."""
import socket
import threading
import time

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

import svc_pb2
import svc_pb2_grpc
import swiftgrpc
from servicer import Servicer
from wiretap import WireTap


class ScriptedServer:
    """Serves unary calls on /t.T/Echo (the request back). On its first connection it waits for
    `hold` requests, answers the first, then sends GOAWAY naming it: the others are refused."""

    def __init__(self, hold=2):
        self.hold = hold
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.answered = []  # (connection number, stream id)
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._serve, args=(sock, n), daemon=True).start()

    def _serve(self, sock, n):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        requests, bodies, goaway_sent = [], {}, False
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        requests.append(ev.stream_id)
                        if n > 1:
                            self._answer(conn, ev.stream_id, bodies.pop(ev.stream_id, b""), n)
                if n == 1 and not goaway_sent and len(requests) >= self.hold:
                    first = min(requests)
                    self._answer(conn, first, bodies.pop(first, b""), n)
                    conn.close_connection(error_code=0, last_stream_id=first)
                    goaway_sent = True
                sock.sendall(conn.data_to_send())
        except OSError:
            return
        finally:
            sock.close()

    def _answer(self, conn, stream, body, n):
        conn.send_headers(stream, [(":status", "200"), ("content-type", "application/grpc")])
        conn.send_data(stream, body)  # the request's framed message, echoed
        conn.send_headers(stream, [("grpc-status", "0")], end_stream=True)
        with self.lock:
            self.answered.append((n, stream))

    def close(self):
        self.listener.close()


def test_a_call_above_the_goaway_last_stream_goes_again_on_a_new_connection():
    server = ScriptedServer(hold=2)
    try:
        with swiftgrpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            assert ch.wait_for_ready(10)
            echo = ch.unary_unary("/t.T/Echo")
            first, second = echo.future(b"one", timeout=10), echo.future(b"two", timeout=10)
            assert (first.result(timeout=10), second.result(timeout=10)) == (b"one", b"two")
        # The refused call was never answered on the first connection: it went on the second.
        assert server.connections == 2
        assert server.answered == [(1, 1), (2, 1)] or sorted(server.answered) == [(1, 1), (2, 1)]
    finally:
        server.close()


def test_a_streaming_request_refused_by_goaway_fails_unavailable():
    # Its messages were sent and are not kept: it cannot go again, so it fails UNAVAILABLE (it
    # was not processed, so the caller may retry it).
    server = ScriptedServer(hold=2)
    try:
        with swiftgrpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            assert ch.wait_for_ready(10)
            unary = ch.unary_unary("/t.T/Echo").future(b"one", timeout=10)
            stream = ch.stream_unary("/t.T/Echo").future(iter([b"two"]), timeout=10)
            assert unary.result(timeout=10) == b"one"
            with pytest.raises(grpc.RpcError) as err:
                stream.result(timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.close()


def test_too_many_pings_halves_the_clients_ping_rate():
    # A grpcio server allowing a ping every 150 ms (2 strikes) ends the connection of a client
    # pinging every 100 ms with GOAWAY "too_many_pings"; the swiftgrpc channel then pings every
    # 200 ms on its next connection, which the server lets be.
    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.http2.min_ping_interval_without_data_ms", 150),
                                  ("grpc.keepalive_permit_without_calls", 1)])
    svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    tap = WireTap(port)
    try:
        options = [("grpc.keepalive_time_ms", 100), ("grpc.keepalive_permit_without_calls", 1)]
        with swiftgrpc.insecure_channel(tap.target, options=options) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            assert stub.Unary(svc_pb2.Msg(text="echo", data=b"a"), timeout=10).data == b"a"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                    debug == b"too_many_pings" for _, _, debug in tap.goaways("response")):
                time.sleep(0.05)  # polling the wire record for an event that comes by itself
            assert [debug for _, _, debug in tap.goaways("response", connection=1)][0] == b"too_many_pings"
            # Still served, on a new connection, pinging every 200 ms: no longer below grpcio's
            # 150 ms minimum, so that connection is not told to go.
            assert stub.Unary(svc_pb2.Msg(text="echo", data=b"b"), timeout=10).data == b"b"
            assert tap.connections == 2
            time.sleep(1.0)  # the quantity under test: the pings of a second
            assert tap.goaways("response", connection=2) == []
            assert 3 <= tap.pings("request", connection=2) <= 7  # 1 s / 200 ms, give or take
    finally:
        tap.close()
        server.stop(None).wait(10)


def grpcio_server(options):
    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(max_workers=8),
                         options=options)
    svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_a_grpcio_servers_max_connection_age_costs_the_swiftgrpc_client_no_call():
    server, port = grpcio_server([("grpc.max_connection_age_ms", 200),
                                  ("grpc.max_connection_age_grace_ms", 5000)])
    tap = WireTap(port)
    try:
        with swiftgrpc.insecure_channel(tap.target) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            deadline = time.monotonic() + 10
            calls = 0
            while time.monotonic() < deadline and tap.connections < 3:
                assert stub.Unary(svc_pb2.Msg(text="echo", data=b"a"), timeout=10).data == b"a"
                calls += 1
        assert tap.connections >= 3 and calls > 3
        assert all(code == 0 for _, code, _ in tap.goaways("response"))
    finally:
        tap.close()
        server.stop(None).wait(10)


def test_a_grpcio_servers_max_connection_idle_and_the_next_call():
    server, port = grpcio_server([("grpc.max_connection_idle_ms", 200)])
    tap = WireTap(port)
    try:
        with swiftgrpc.insecure_channel(tap.target) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            assert stub.Unary(svc_pb2.Msg(text="echo", data=b"1"), timeout=10).data == b"1"
            deadline = time.monotonic() + 10
            while not tap.goaways("response") and time.monotonic() < deadline:
                time.sleep(0.02)  # polling the wire record for the GOAWAY the server sends itself
            assert tap.goaways("response")
            assert stub.Unary(svc_pb2.Msg(text="echo", data=b"2"), timeout=10).data == b"2"
        assert tap.connections == 2
    finally:
        tap.close()
        server.stop(None).wait(10)
