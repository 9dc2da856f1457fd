"""TLS against real peers, both directions: the C server (interop_server) under grpcio TLS
clients, the C client (client_driver) against a grpcio TLS server; mutual TLS; failures that
name their cause; the server name override; certificate rotation; ALPN. Certificates are made
by Tests/tls/certs.py with the openssl command."""
import os
import socket
import ssl
import subprocess
import sys

import grpc
import pytest

from conftest import ServerProcess, method
from grpcio_test_server import GrpcioTestServer
from test_client_interop import METHOD, drive

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tls"))
import certs  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("pki")))


def pem(pki, name):
    return certs.read(pki, name)


def tls_server(pki, *extra, cert="server"):
    return ServerProcess("--tls-cert", os.path.join(pki, f"{cert}.pem"),
                         "--tls-key", os.path.join(pki, f"{cert}.key"), *extra)


def grpcio_channel(pki, port, client=None, roots="ca.pem", name=None):
    creds = grpc.ssl_channel_credentials(
        pem(pki, roots), pem(pki, f"{client}.key") if client else None,
        pem(pki, f"{client}.pem") if client else None)
    options = [("grpc.ssl_target_name_override", name)] if name else []
    return grpc.secure_channel(f"localhost:{port}", creds, options=options)


def all_kinds(ch):
    assert method(ch, "Unary")(b"tls", timeout=10) == b"tls"
    assert list(method(ch, "ServerStream", "unary_stream")(b"4:3", timeout=10)) == [b"aaa", b"bbb", b"ccc", b"ddd"]
    assert method(ch, "ClientStream", "stream_unary")(iter([b"ab", b"cde"]), timeout=10) == b"2:5"
    assert list(method(ch, "Bidi", "stream_stream")(iter([b"x", b"yz"]), timeout=10)) == [b"x", b"yz"]


def auth(ch):
    text = method(ch, "Auth")(b"", timeout=10).decode()
    props = {}
    for line in text.splitlines():
        k, _, v = line.partition("=")
        props.setdefault(k, []).append(v)
    return props


@pytest.mark.parametrize("mode", ["push", "pull"])
def test_grpcio_clients_call_the_c_tls_server(pki, mode):
    s = tls_server(pki, *(["--pull"] if mode == "pull" else []))
    try:
        with grpcio_channel(pki, s.port) as ch:
            all_kinds(ch)
            props = auth(ch)
            assert props["transport_security_type"] == ["ssl"]
            assert "x509_common_name" not in props  # no client certificate was asked for
    finally:
        s.stop()


@pytest.mark.parametrize("mode", ["push", "pull"])
def test_the_c_client_calls_a_grpcio_tls_server(pki, mode):
    creds = grpc.ssl_server_credentials([(pem(pki, "server.key"), pem(pki, "server.pem"))])
    server = GrpcioTestServer("localhost:0", credentials=creds)
    try:
        tls = ["--tls-roots", os.path.join(pki, "ca.pem")]
        target = f"localhost:{server.port}"
        r = drive(target, *tls, "--method", METHOD + "Unary", "--req", b"hi".hex(), "call", mode=mode)
        assert r.first("STATUS ").split()[1] == "0" and r.first("RESPONSE ").split()[2] == b"hi".hex()
        r = drive(target, *tls, "--method", METHOD + "ServerStream", "--kind", "server",
                  "--req", b"3:2".hex(), "call", mode=mode)
        assert len(r.all("MESSAGE ")) == 3 and r.first("STATUS ").split()[1] == "0"
        r = drive(target, *tls, "--method", METHOD + "ClientStream", "--kind", "client",
                  "--req", b"ab".hex(), "--req", b"c".hex(), "call", mode=mode)
        assert r.first("RESPONSE ").split()[2] == b"2:3".hex()
        r = drive(target, *tls, "--method", METHOD + "Bidi", "--kind", "bidi",
                  "--req", b"p".hex(), "--req", b"q".hex(), "call", mode=mode)
        assert [l.split()[2] for l in r.all("MESSAGE ")] == [b"p".hex(), b"q".hex()]
        # By IP address: checked against the certificate's IP SANs, no SNI.
        r = drive(f"127.0.0.1:{server.port}", *tls, "--method", METHOD + "Unary", "--req", b"ip".hex(), "call")
        assert r.first("STATUS ").split()[1] == "0"
    finally:
        server.stop(0)


def test_mutual_tls(pki):
    s = tls_server(pki, "--tls-client-roots", os.path.join(pki, "ca.pem"), "--tls-client-auth", "require")
    try:
        with grpcio_channel(pki, s.port, client="client") as ch:
            assert method(ch, "Unary")(b"mutual", timeout=10) == b"mutual"
            props = auth(ch)
            assert props["x509_common_name"] == ["test-client"]
            assert sorted(props["x509_subject_alternative_name"]) == ["client.test", "spiffe://test/client"]
            assert props["peer_dns"] == ["client.test"]
            assert props["x509_subject"] == ["CN=test-client"]
        for client in (None, "untrusted-client"):  # no certificate, or one nobody vouches for
            with grpcio_channel(pki, s.port, client=client) as ch:
                with pytest.raises(grpc.RpcError) as e:
                    method(ch, "Unary")(b"refused", timeout=10)
                assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        tls = ["--tls-roots", os.path.join(pki, "ca.pem")]
        r = drive(f"localhost:{s.port}", *tls, "--method", METHOD + "Unary", "--req", b"x".hex(), "call")
        assert r.first("STATUS ").split()[1] == "14"
        r = drive(f"localhost:{s.port}", *tls, "--tls-cert", os.path.join(pki, "client.pem"),
                  "--tls-key", os.path.join(pki, "client.key"), "--method", METHOD + "Unary",
                  "--req", b"ok".hex(), "call")
        assert r.first("STATUS ").split()[1] == "0"
    finally:
        s.stop()


def status_text(r):
    line = r.first("STATUS ").split()
    return line[1], bytes.fromhex(line[2]).decode() if line[2] != "-" else ""


@pytest.mark.parametrize("cert,roots,name,cause", [
    ("expired", "ca.pem", None, "certificate has expired"),
    ("wronghost", "ca.pem", None, "hostname mismatch"),
    ("server", "other-ca.pem", None, "unable to get local issuer certificate"),
    ("wronghost", "ca.pem", "wrong.example", None),  # the override makes it right
])
def test_the_c_client_names_why_a_server_is_refused(pki, cert, roots, name, cause):
    s = tls_server(pki, "--also-plain", cert=cert)
    try:
        args = ["--tls-roots", os.path.join(pki, roots)] + (["--tls-name", name] if name else [])
        r = drive(f"localhost:{s.port}", *args, "--method", METHOD + "Unary", "--req", b"x".hex(), "call")
        code, text = status_text(r)
        if cause is None:
            assert code == "0", text
        else:
            assert code == "14" and cause in text, (code, text)
        # The server goes on serving others (over plaintext here).
        with grpc.insecure_channel(f"127.0.0.1:{s.plain_port}") as ch:
            assert method(ch, "Unary")(b"others", timeout=10) == b"others"
    finally:
        s.stop()


def test_a_server_name_override_is_the_default_authority_as_in_grpc_core(pki):
    s = tls_server(pki, cert="wronghost")
    try:
        seen = {}
        for who in ("c", "grpcio"):
            if who == "c":
                r = drive(f"127.0.0.1:{s.port}", "--tls-roots", os.path.join(pki, "ca.pem"), "--tls-name",
                          "wrong.example", "--method", METHOD + "Auth", "call")
                text = bytes.fromhex(r.first("RESPONSE ").split()[2]).decode()
            else:
                with grpcio_channel(pki, s.port, name="wrong.example") as ch:
                    text = method(ch, "Auth")(b"", timeout=10).decode()
            seen[who] = [l for l in text.splitlines() if l.startswith(":authority=")]
        assert seen["c"] == seen["grpcio"] == [":authority=wrong.example"], seen
    finally:
        s.stop()


def test_grpcio_clients_refuse_bad_servers_too(pki):
    for cert, name in (("expired", None), ("wronghost", None), ("wronghost", "wrong.example")):
        s = tls_server(pki, cert=cert)
        try:
            with grpcio_channel(pki, s.port, name=name) as ch:
                if name:
                    assert method(ch, "Unary")(b"ok", timeout=10) == b"ok"
                else:
                    with pytest.raises(grpc.RpcError) as e:
                        method(ch, "Unary")(b"x", timeout=10)
                    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            s.stop()


def test_plaintext_and_tls_mismatches_fail_cleanly(pki):
    s = tls_server(pki, "--also-plain")
    try:
        r = drive(f"localhost:{s.plain_port}", "--tls-roots", os.path.join(pki, "ca.pem"),
                  "--method", METHOD + "Unary", "--req", b"x".hex(), "call")
        code, text = status_text(r)
        assert code == "14" and "TLS handshake failed" in text, text
        r = drive(f"localhost:{s.port}", "--method", METHOD + "Unary", "--req", b"x".hex(), "call")
        assert status_text(r)[0] == "14"
        with grpc.insecure_channel(f"localhost:{s.port}") as ch:  # grpcio, plaintext on TLS
            with pytest.raises(grpc.RpcError) as e:
                method(ch, "Unary")(b"x", timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        with grpcio_channel(pki, s.port) as ch:
            assert method(ch, "Unary")(b"still", timeout=10) == b"still"
        with grpc.insecure_channel(f"127.0.0.1:{s.plain_port}") as ch:
            assert auth(ch)["transport_security_type"] == ["insecure"]
    finally:
        s.stop()


def served_certificate(pki, port, alpn=("h2",)):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    ctx.set_alpn_protocols(list(alpn))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True), t.selected_alpn_protocol()


def der(pki, name):
    return subprocess.run(["openssl", "x509", "-in", os.path.join(pki, name), "-outform", "der"],
                          capture_output=True, check=True).stdout


def test_rotation_applies_to_new_connections_and_spares_open_ones(pki):
    s = tls_server(pki, "--tls-rotate-cert", os.path.join(pki, "server2.pem"),
                   "--tls-rotate-key", os.path.join(pki, "server2.key"))
    try:
        assert served_certificate(pki, s.port) == (der(pki, "server.pem"), "h2")
        with grpcio_channel(pki, s.port) as open_one:
            assert method(open_one, "Unary")(b"before", timeout=10) == b"before"
            assert method(open_one, "Rotate")(b"", timeout=10) == b"rotated"
            assert served_certificate(pki, s.port)[0] == der(pki, "server2.pem")
            assert method(open_one, "Unary")(b"after", timeout=10) == b"after"  # same connection
        with grpcio_channel(pki, s.port) as new_one:
            assert method(new_one, "Unary")(b"new", timeout=10) == b"new"
    finally:
        s.stop()


def test_a_fetcher_is_asked_before_each_handshake_and_can_rotate(pki):
    s = tls_server(pki, "--tls-rotate-cert", os.path.join(pki, "server2.pem"),
                   "--tls-rotate-key", os.path.join(pki, "server2.key"), "--tls-fetch-rotate-after", "2")
    try:
        seen = [served_certificate(pki, s.port)[0] for _ in range(4)]
        assert seen == [der(pki, "server.pem")] * 2 + [der(pki, "server2.pem")] * 2
        with grpcio_channel(pki, s.port) as ch:
            assert method(ch, "Unary")(b"fetched", timeout=10) == b"fetched"
            log = method(ch, "Log")(b"", timeout=10).decode().splitlines()
        fetches = [l for l in log if l.startswith("FETCH")]
        assert len(fetches) == 5 and len(set(fetches)) == 1, log  # one per connection, one handle
        assert "bad" not in fetches[0]
    finally:
        s.stop()


def test_alpn_h2_is_required(pki):
    s = tls_server(pki)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            served_certificate(pki, s.port, alpn=("http/1.1",))
        with grpcio_channel(pki, s.port) as ch:
            assert method(ch, "Unary")(b"h2", timeout=10) == b"h2"
    finally:
        s.stop()


def initial(r):
    return {l.split()[1]: bytes.fromhex(l.split()[2]).decode() for l in r.all("MD ")}


def test_call_credentials_reach_the_server_over_tls(pki):
    creds = grpc.ssl_server_credentials([(pem(pki, "server.key"), pem(pki, "server.pem"))])
    server = GrpcioTestServer("localhost:0", credentials=creds)
    try:
        r = drive(f"localhost:{server.port}", "--tls-roots", os.path.join(pki, "ca.pem"),
                  "--token", "channel-token", "--plugin-md", "x-plugin=from-plugin",
                  "--call-token", "call-token", "--method", METHOD + "Unary", "--req", b"c".hex(), "call")
        assert r.first("STATUS ").split()[1] == "0", r.out
        md = r.all("MD ")
        values = [bytes.fromhex(l.split()[2]).decode() for l in md if l.split()[1] == "echo-authorization"]
        assert sorted(values) == ["Bearer call-token", "Bearer channel-token"], md
        assert initial(r)["echo-x-plugin"] == "from-plugin"
        assert r.first("PLUGIN ") == f"PLUGIN Unary https://localhost:{server.port}/swiftgrpc.test.Test"
        # A plugin that fails ends the call with UNAVAILABLE, its message kept; the server never
        # sees that call.
        before = server.calls
        r = drive(f"localhost:{server.port}", "--tls-roots", os.path.join(pki, "ca.pem"),
                  "--plugin-fail", "no token for you", "--method", METHOD + "Unary", "--req", b"c".hex(), "call")
        code, text = status_text(r)
        assert code == "14" and text == "Getting metadata from plugin failed with error: no token for you", text
        assert server.calls == before
    finally:
        server.stop(0)


def test_call_credentials_are_never_sent_in_plaintext():
    server = GrpcioTestServer()
    try:
        r = drive(server.target, "--call-token", "secret", "--method", METHOD + "Unary", "--req", b"c".hex(), "call")
        code, text = status_text(r)
        assert code == "16" and "sufficient security level" in text, text  # UNAUTHENTICATED, as grpcio
        assert server.calls == 0
    finally:
        server.stop(0)


def test_grpcio_call_credentials_reach_the_c_server(pki):
    s = tls_server(pki)
    try:
        creds = grpc.composite_channel_credentials(grpc.ssl_channel_credentials(pem(pki, "ca.pem")),
                                                   grpc.access_token_call_credentials("grpcio-token"))
        with grpc.secure_channel(f"localhost:{s.port}", creds) as ch:
            reply, call = method(ch, "Unary").with_call(b"t", timeout=10)
            assert dict(call.initial_metadata())["echo-authorization"] == "Bearer grpcio-token"
    finally:
        s.stop()
