"""Malformed requests on the wire, sent with a raw HTTP/2 client (the h2 package): each gets
the proper HTTP or gRPC status, and the server keeps serving."""
import socket
import struct

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

from conftest import method

GOOD_HEADERS = [
    (":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
    ("content-type", "application/grpc"), ("te", "trailers"),
]


def frame(payload: bytes, flag: int = 0, length: int | None = None) -> bytes:
    return struct.pack(">BI", flag, len(payload) if length is None else length) + payload


def raw_call(port, path, data=b"", headers=None, end_with_data=True):
    """Sends one request; returns (response headers dict, body, trailers dict, reset code)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    hdrs = [(":path", path)] + (headers if headers is not None else GOOD_HEADERS)
    conn.send_headers(1, hdrs, end_stream=not data and end_with_data)
    if data:
        conn.send_data(1, data, end_stream=end_with_data)
    sock.sendall(conn.data_to_send())
    response, trailers, body, reset = {}, {}, b"", None
    done = False
    while not done:
        chunk = sock.recv(65536)
        if not chunk:
            break
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.ResponseReceived):
                response = {k.decode(): v.decode() for k, v in event.headers}
                if event.stream_ended:
                    done = True
            elif isinstance(event, h2.events.TrailersReceived):
                trailers = {k.decode(): v.decode() for k, v in event.headers}
                done = True
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                reset = event.error_code
                done = True
            elif isinstance(event, h2.events.StreamEnded):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    return response, body, trailers, reset


def status_of(response, trailers):
    return int((trailers or response).get("grpc-status", "-1"))


@pytest.fixture
def port(push_server):
    yield push_server.port
    # After every malformed request, the server still answers a real client.
    with grpc.insecure_channel(push_server.target) as ch:
        assert method(ch, "Unary")(b"alive", timeout=10) == b"alive"


def test_well_formed_raw_request(port):
    response, body, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"hi"))
    assert response[":status"] == "200" and body == frame(b"hi") and trailers["grpc-status"] == "0"


def test_missing_content_type_is_http_415(port):
    headers = [h for h in GOOD_HEADERS if h[0] != "content-type"]
    response, _, _, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"x"), headers)
    assert response[":status"] == "415"


def test_wrong_content_type_is_http_415(port):
    headers = [h for h in GOOD_HEADERS if h[0] != "content-type"] + [("content-type", "application/json")]
    response, _, _, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"x"), headers)
    assert response[":status"] == "415"


def test_content_type_with_suffix_is_accepted(port):
    headers = [h for h in GOOD_HEADERS if h[0] != "content-type"] + [("content-type", "application/grpc+proto")]
    response, body, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"x"), headers)
    assert trailers["grpc-status"] == "0" and body == frame(b"x")


def test_non_post_method_is_rejected(port):
    headers = [(":method", "PUT")] + [h for h in GOOD_HEADERS if h[0] != ":method"]
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"x"), headers)
    assert status_of(response, trailers) == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_length_prefix_larger_than_data(port):
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"abc", length=10))
    assert status_of(response, trailers) == grpc.StatusCode.INTERNAL.value[0]
    assert "inside a message" in (trailers or response)["grpc-message"]


def test_length_prefix_above_limit(port):
    response, _, trailers, _ = raw_call(
        port, "/swiftgrpc.test.Test/Unary", frame(b"abc", length=64 * 1024 * 1024), end_with_data=False)
    assert status_of(response, trailers) == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def test_compressed_flag_without_encoding(port):
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"abc", flag=1))
    assert status_of(response, trailers) == grpc.StatusCode.INTERNAL.value[0]


def test_unknown_encoding_is_unimplemented(port):
    headers = GOOD_HEADERS + [("grpc-encoding", "snappy")]
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"abc", flag=1), headers)
    fields = trailers or response
    assert status_of(response, trailers) == grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert fields["grpc-accept-encoding"] == "identity,deflate,gzip"  # what it decodes


def test_invalid_base64_in_binary_header(port):
    headers = GOOD_HEADERS + [("x-data-bin", "not base64!")]
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"abc"), headers)
    assert status_of(response, trailers) == grpc.StatusCode.INTERNAL.value[0]


def test_padded_and_unpadded_base64_accepted(port):
    for value in ("aGk=", "aGk"):
        headers = GOOD_HEADERS + [("x-data-bin", value)]
        _, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"m"), headers)
        assert trailers["grpc-status"] == "0"
        assert trailers["trailer-x-data-bin"].rstrip("=") == "aGk"


def test_unary_with_two_messages(port):
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", frame(b"a") + frame(b"b"))
    assert status_of(response, trailers) == grpc.StatusCode.INTERNAL.value[0]


def test_unary_with_no_message(port):
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Unary", b"")
    assert status_of(response, trailers) == grpc.StatusCode.INTERNAL.value[0]


def test_server_enforces_grpc_timeout(port):
    headers = GOOD_HEADERS + [("grpc-timeout", "50m")]
    response, _, trailers, _ = raw_call(port, "/swiftgrpc.test.Test/Slow", frame(b"2000"), headers)
    assert status_of(response, trailers) == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


def test_unknown_method_trailers_only(port):
    response, body, trailers, _ = raw_call(port, "/nope.Nope/Nope", frame(b"x"))
    assert trailers == {} and body == b""
    assert response["grpc-status"] == str(grpc.StatusCode.UNIMPLEMENTED.value[0])


def test_garbage_instead_of_http2(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 10)
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    sock.close()
