"""TLS, mutual TLS, call credentials and certificate rotation through the Python binding, against
grpcio on both sides: every test runs the same code with `grpc` and with `swiftgrpc` and expects
the same outcome (the drop-in claim), over real sockets."""
import os
import socket
import ssl
import subprocess
import sys
import threading
from concurrent import futures

import pytest

import grpc
import swiftgrpc
import swiftgrpc.aio
import svc_pb2
import svc_pb2_grpc
from conftest import IMPLS
from servicer import AsyncServicer, Servicer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tls"))
import certs  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("pki")))


def pem(pki, name):
    return certs.read(pki, name)


def mod(impl):
    return grpc if impl == "grpcio" else swiftgrpc


def tls_server(impl, creds):
    m = mod(impl)
    server = m.server(futures.ThreadPoolExecutor(max_workers=8))
    svc_pb2_grpc.add_SvcServicer_to_server(Servicer(), server)
    port = server.add_secure_port("localhost:0", creds)
    server.start()
    return server, port


def server_creds(impl, pki, require_client_auth=False, cert="server"):
    return mod(impl).ssl_server_credentials([(pem(pki, f"{cert}.key"), pem(pki, f"{cert}.pem"))],
                                            pem(pki, "ca.pem") if require_client_auth else None,
                                            require_client_auth)


def channel(impl, pki, port, client=None, roots="ca.pem", options=None, call=None):
    m = mod(impl)
    creds = m.ssl_channel_credentials(pem(pki, roots), pem(pki, f"{client}.key") if client else None,
                                      pem(pki, f"{client}.pem") if client else None)
    if call is not None:
        creds = m.composite_channel_credentials(creds, *call)
    return m.secure_channel(f"localhost:{port}", creds, options=options)


def auth(stub, **kw):
    r = stub.Unary(svc_pb2.Msg(text="auth"), timeout=10, **kw)
    return eval(r.text), r.data  # (key, identities, sorted auth properties, metadata), PEM


def all_kinds(stub):
    assert stub.Unary(svc_pb2.Msg(text="echo", data=b"tls"), timeout=10).data == b"tls"
    assert [m.text for m in stub.ServerStream(svc_pb2.Msg(n=3), timeout=10)] == ["0", "1", "2"]
    assert stub.ClientStream(iter([svc_pb2.Msg(text="a"), svc_pb2.Msg(text="b")]), timeout=10).text == "a,b"
    assert [m.text for m in stub.Bidi(iter([svc_pb2.Msg(text="x"), svc_pb2.Msg(text="y")]), timeout=10)] == ["X", "Y"]


@pytest.mark.parametrize("server_impl", IMPLS)
@pytest.mark.parametrize("client_impl", IMPLS)
def test_tls_both_ways(pki, server_impl, client_impl):
    server, port = tls_server(server_impl, server_creds(server_impl, pki))
    try:
        with channel(client_impl, pki, port) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            all_kinds(stub)
            (key, ids, props, _), cert = auth(stub)
            assert key is None and ids is None and cert == b""  # no client certificate asked for
            assert dict(props)["transport_security_type"] == [b"ssl"]
    finally:
        server.stop(None).wait(10)


def auth_seen_by(server_impl, pki, client_impl):
    server, port = tls_server(server_impl, server_creds(server_impl, pki, require_client_auth=True))
    try:
        with channel(client_impl, pki, port, client="client") as ch:
            return auth(svc_pb2_grpc.SvcStub(ch))
    finally:
        server.stop(None).wait(10)


@pytest.mark.parametrize("client_impl", IMPLS)
def test_mutual_tls_identities_match_grpcio(pki, client_impl):
    (key, ids, props, _), cert = auth_seen_by("swiftgrpc", pki, client_impl)
    assert key == "x509_subject_alternative_name"
    assert ids == [b"client.test", b"spiffe://test/client"]
    assert cert == pem(pki, "client.pem")
    (g_key, g_ids, g_props, _), g_cert = auth_seen_by("grpcio", pki, client_impl)
    assert (key, ids, cert) == (g_key, g_ids, g_cert)
    # Every property grpcio reports that we report too has the same values.
    mine, theirs = dict(props), dict(g_props)
    for name in ("transport_security_type", "security_level", "x509_common_name",
                 "x509_subject_alternative_name", "x509_subject", "peer_dns", "peer_uri",
                 "peer_spiffe_id", "ssl_tls_version", "ssl_session_reused", "ssl_requested_server_name"):
        if name in theirs:  # (grpcio before 1.85 reports no ssl_tls_version)
            assert mine.get(name) == theirs[name], name
    assert set(theirs) - set(mine) <= {"ssl_negotiated_key_exchange_group"}, set(theirs) - set(mine)


@pytest.mark.parametrize("server_impl", IMPLS)
@pytest.mark.parametrize("client_impl", IMPLS)
@pytest.mark.parametrize("client,roots", [(None, "ca.pem"), ("untrusted-client", "ca.pem"),
                                          ("client", "other-ca.pem")])
def test_refused_handshakes_fail_the_call_with_unavailable(pki, server_impl, client_impl, client, roots):
    server, port = tls_server(server_impl, server_creds(server_impl, pki, require_client_auth=True))
    try:
        with channel(client_impl, pki, port, client=client, roots=roots) as ch:
            with pytest.raises(grpc.RpcError) as e:
                svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo"), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None).wait(10)


def test_the_swiftgrpc_client_says_why_a_certificate_is_refused(pki):
    server, port = tls_server("grpcio", server_creds("grpcio", pki, cert="wronghost"))
    try:
        with channel("swiftgrpc", pki, port) as ch:
            with pytest.raises(grpc.RpcError) as e:
                svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo"), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "hostname mismatch" in e.value.details()
        # grpc.ssl_target_name_override names the host the certificate must cover.
        with channel("swiftgrpc", pki, port, options=[("grpc.ssl_target_name_override", "wrong.example")]) as ch:
            assert svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo", data=b"ok"), timeout=5).data == b"ok"
    finally:
        server.stop(None).wait(10)


@pytest.mark.parametrize("client_impl", IMPLS)
def test_plaintext_and_tls_mismatches_fail_with_unavailable(pki, client_impl, swift_target):
    server, port = tls_server("swiftgrpc", server_creds("swiftgrpc", pki))
    try:
        m = mod(client_impl)
        plain_on_tls = m.insecure_channel(f"localhost:{port}")
        tls_on_plain = m.secure_channel(swift_target, m.ssl_channel_credentials(pem(pki, "ca.pem")),
                                        options=[("grpc.ssl_target_name_override", "localhost")])
        for ch in (plain_on_tls, tls_on_plain):
            with ch:
                with pytest.raises(grpc.RpcError) as e:
                    svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo"), timeout=5)
                assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        with channel(client_impl, pki, port) as ch:  # both servers go on serving
            assert svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo", data=b"y"), timeout=5).data == b"y"
        with m.insecure_channel(swift_target) as ch:
            assert svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo", data=b"z"), timeout=5).data == b"z"
    finally:
        server.stop(None).wait(10)


class Plugin(grpc.AuthMetadataPlugin):
    def __init__(self, fail=None):
        self.fail = fail
        self.contexts = []

    def __call__(self, context, callback):
        self.contexts.append((context.service_url, context.method_name))
        if self.fail == "raise":
            raise RuntimeError("boom")
        if self.fail == "error":
            callback(None, ValueError("no token today"))
            return
        if self.fail == "never":
            return
        callback((("x-plugin", "from-plugin"),), None)


@pytest.mark.parametrize("server_impl", IMPLS)
@pytest.mark.parametrize("client_impl", IMPLS)
def test_call_credentials_reach_the_server(pki, server_impl, client_impl):
    m = mod(client_impl)
    plugin = Plugin()
    server, port = tls_server(server_impl, server_creds(server_impl, pki))
    try:
        call = [m.access_token_call_credentials("channel-token"), m.metadata_call_credentials(plugin, "p")]
        with channel(client_impl, pki, port, call=call) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            (_, _, _, md), _ = auth(stub)
            assert ("authorization", "Bearer channel-token") in md and ("x-plugin", "from-plugin") in md
            (_, _, _, md), _ = auth(stub, credentials=m.access_token_call_credentials("call-token"))
            tokens = sorted(v for k, v in md if k == "authorization")
            assert tokens == ["Bearer call-token", "Bearer channel-token"]
            # Streaming calls carry them too.
            assert [r.text for r in stub.ServerStream(svc_pb2.Msg(n=2), timeout=10)] == ["0", "1"]
        assert plugin.contexts[0] == (f"https://localhost:{port}/swiftgrpc.pytest.Svc", "Unary")
    finally:
        server.stop(None).wait(10)


@pytest.mark.parametrize("fail,message", [
    ("raise", "Getting metadata from plugin failed with error: boom"),
    ("error", "Getting metadata from plugin failed with error: no token today")])
@pytest.mark.parametrize("client_impl", IMPLS)
def test_a_failing_plugin_fails_the_call_as_grpcio_does(pki, client_impl, fail, message):
    m = mod(client_impl)
    server, port = tls_server("swiftgrpc", server_creds("swiftgrpc", pki))
    try:
        call = [m.metadata_call_credentials(Plugin(fail))]
        with channel(client_impl, pki, port, call=call) as ch:
            stub = svc_pb2_grpc.SvcStub(ch)
            with pytest.raises(grpc.RpcError) as e:
                stub.Unary(svc_pb2.Msg(text="echo"), timeout=10)
            assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAVAILABLE, message)
        with channel(client_impl, pki, port) as ch:  # the server is fine
            assert svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo", data=b"x"), timeout=10).data == b"x"
    finally:
        server.stop(None).wait(10)


def test_a_plugin_that_never_answers_is_bounded_by_the_deadline(pki):
    server, port = tls_server("swiftgrpc", server_creds("swiftgrpc", pki))
    try:
        call = [swiftgrpc.metadata_call_credentials(Plugin("never"))]
        with channel("swiftgrpc", pki, port, call=call) as ch:
            with pytest.raises(grpc.RpcError) as e:
                svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo"), timeout=0.5)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        server.stop(None).wait(10)


@pytest.mark.parametrize("client_impl", IMPLS)
def test_call_credentials_are_never_sent_in_plaintext(client_impl, swift_target):
    m = mod(client_impl)
    with m.insecure_channel(swift_target) as ch:
        with pytest.raises(grpc.RpcError) as e:
            svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="auth"), timeout=10,
                                           credentials=m.access_token_call_credentials("secret"))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "sufficient security level" in e.value.details()
        # Insecure: the auth context says so, as grpcio's does.
        (key, ids, props, md), _ = auth(svc_pb2_grpc.SvcStub(ch))
        assert key is None and ids is None and dict(props)["transport_security_type"] == [b"insecure"]


def served_certificate(pki, port):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True)


def der(pki, name):
    return subprocess.run(["openssl", "x509", "-in", os.path.join(pki, name), "-outform", "der"],
                          capture_output=True, check=True).stdout


@pytest.mark.parametrize("server_impl", IMPLS)
def test_a_fetcher_rotates_certificates_for_new_connections(pki, server_impl):
    m = mod(server_impl)
    first = m.ssl_server_certificate_configuration([(pem(pki, "server.key"), pem(pki, "server.pem"))])
    second = m.ssl_server_certificate_configuration([(pem(pki, "server2.key"), pem(pki, "server2.pem"))])
    answers = ["junk", None, RuntimeError("fetch failed"), second]
    calls = []

    def fetch():
        calls.append(threading.current_thread().name)
        a = answers.pop(0) if answers else None
        if isinstance(a, Exception):
            raise a
        return a

    server, port = tls_server(server_impl, m.dynamic_ssl_server_credentials(first, fetch))
    try:
        seen = [served_certificate(pki, port) for _ in range(5)]
        # junk, None and an exception keep the current certificate; `second` applies at once.
        assert seen == [der(pki, "server.pem")] * 3 + [der(pki, "server2.pem")] * 2
        assert len(calls) >= 5
        with channel("grpcio", pki, port) as ch:
            assert svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="echo", data=b"r"), timeout=10).data == b"r"
    finally:
        server.stop(None).wait(10)


def test_aio_tls_both_ways(pki):
    import asyncio

    async def main():
        server = swiftgrpc.aio.server()
        svc_pb2_grpc.add_SvcServicer_to_server(AsyncServicer(), server)
        port = server.add_secure_port("localhost:0", server_creds("swiftgrpc", pki, require_client_auth=True))
        await server.start()
        try:
            creds = swiftgrpc.ssl_channel_credentials(pem(pki, "ca.pem"), pem(pki, "client.key"), pem(pki, "client.pem"))
            async with swiftgrpc.aio.secure_channel(f"localhost:{port}", creds) as ch:
                r = await svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="auth"), timeout=10)
            (key, ids, props, _) = eval(r.text)
            assert ids == [b"client.test", b"spiffe://test/client"] and r.data == pem(pki, "client.pem")
        finally:
            await server.stop(None)
        # The aio client against grpcio's TLS server.
        g, gport = tls_server("grpcio", server_creds("grpcio", pki))
        try:
            creds = swiftgrpc.ssl_channel_credentials(pem(pki, "ca.pem"))
            call = swiftgrpc.metadata_call_credentials(Plugin())
            async with swiftgrpc.aio.secure_channel(f"localhost:{gport}", creds) as ch:
                r = await svc_pb2_grpc.SvcStub(ch).Unary(svc_pb2.Msg(text="auth"), timeout=10, credentials=call)
            assert ("x-plugin", "from-plugin") in eval(r.text)[3]
        finally:
            g.stop(None).wait(10)

    asyncio.run(main())


def test_bad_credentials_are_refused_clearly(pki):
    s = swiftgrpc
    with pytest.raises(ValueError, match="At least one"):
        s.ssl_server_credentials([])
    with pytest.raises(ValueError, match="require client auth"):
        s.ssl_server_credentials([(pem(pki, "server.key"), pem(pki, "server.pem"))], None, True)
    with pytest.raises(ValueError, match="PEM"):
        s.ssl_server_credentials([(b"not a key", b"not a certificate")])
    with pytest.raises(ValueError, match="does not match"):
        s.ssl_server_credentials([(pem(pki, "client.key"), pem(pki, "server.pem"))])
    with pytest.raises(TypeError):
        s.ssl_server_credentials([("only one",)])
    with pytest.raises(TypeError):
        s.ssl_server_credentials([(1, 2)])
    with pytest.raises(ValueError, match="PEM"):
        s.ssl_channel_credentials(b"junk")
    with pytest.raises(ValueError, match="together"):
        s.ssl_channel_credentials(pem(pki, "ca.pem"), pem(pki, "client.key"))
    with pytest.raises(TypeError):
        s.secure_channel("localhost:1", None)
    with pytest.raises(TypeError):
        s.secure_channel("localhost:1", s.access_token_call_credentials("t"))
    with pytest.raises(ValueError):
        s.access_token_call_credentials("line\nbreak")
    with pytest.raises(TypeError):
        s.metadata_call_credentials("not callable")
    with pytest.raises(ValueError):
        s.composite_call_credentials(s.access_token_call_credentials("t"))
    with pytest.raises(TypeError):
        s.composite_channel_credentials(s.ssl_channel_credentials(), "not credentials")
    with pytest.raises(TypeError):
        s.dynamic_ssl_server_credentials("not a configuration", lambda: None)
    for unsupported in (s.local_channel_credentials, s.local_server_credentials,
                        s.alts_channel_credentials, s.alts_server_credentials):
        with pytest.raises(NotImplementedError, match="not supported"):
            unsupported()
    server = s.server()
    with pytest.raises(TypeError):
        server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
            [(pem(pki, "server.key"), pem(pki, "server.pem"))]))  # grpcio's object, not ours
    with s.secure_channel("localhost:1", s.ssl_channel_credentials()) as ch:
        with pytest.raises(TypeError):
            ch.unary_unary("/a.B/C")(b"", timeout=1, credentials="token")
    server.stop(None)
