"""The Greeter over mutual TLS with a bearer token checked by the server — grpcio's credential
API on swiftgrpc, and grpcio on the other side to show both interoperate:

    python3 secure_greeter.py

It makes a throwaway CA, a server certificate for localhost and a client certificate with the
openssl command, then: a swiftgrpc server (client certificates required) is called by swiftgrpc
and by grpcio, each with a metadata plugin adding the token; a call without the token is refused
by the handler; and a swiftgrpc client calls a grpcio TLS server."""
import os
import subprocess
import sys
import tempfile
from concurrent import futures

import protos  # noqa: F401
import helloworld_pb2
import helloworld_pb2_grpc
import swiftgrpc

TOKEN = "example-token"


def make_certificates(d):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=example CA")
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1"), ("client", "DNS:client.example")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {n: open(os.path.join(d, n), "rb").read()
            for n in ("ca.pem", "server.key", "server.pem", "client.key", "client.pem")}


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        if ("authorization", f"Bearer {TOKEN}") not in context.invocation_metadata():
            context.abort(swiftgrpc.StatusCode.UNAUTHENTICATED, "a valid token is required")
        who = b",".join(context.peer_identities() or [b"?"]).decode()
        return helloworld_pb2.HelloReply(message=f"Hello, {request.name} (certificate: {who})!")


class TokenPlugin:
    """An AuthMetadataPlugin: called for every call, answers through the callback."""

    def __call__(self, context, callback):
        callback((("authorization", f"Bearer {TOKEN}"),), None)


def serve(impl, pem):
    server = impl.server(futures.ThreadPoolExecutor(max_workers=4))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    creds = impl.ssl_server_credentials([(pem["server.key"], pem["server.pem"])],
                                        root_certificates=pem["ca.pem"], require_client_auth=True)
    port = server.add_secure_port("localhost:0", creds)
    server.start()
    return server, port


def greet(impl, port, pem, name, with_token=True):
    creds = impl.ssl_channel_credentials(pem["ca.pem"], pem["client.key"], pem["client.pem"])
    if with_token:
        creds = impl.composite_channel_credentials(creds, impl.metadata_call_credentials(TokenPlugin()))
    with impl.secure_channel(f"localhost:{port}", creds) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        try:
            return stub.SayHello(helloworld_pb2.HelloRequest(name=name), timeout=10).message
        except impl.RpcError as e:
            return f"{e.code().name}: {e.details()}"


def main():
    import grpc
    with tempfile.TemporaryDirectory() as d:
        pem = make_certificates(d)
    server, port = serve(swiftgrpc, pem)
    results = [
        ("swiftgrpc server, swiftgrpc client", greet(swiftgrpc, port, pem, "swiftgrpc")),
        ("swiftgrpc server, grpcio client", greet(grpc, port, pem, "grpcio")),
        ("swiftgrpc server, no token", greet(swiftgrpc, port, pem, "nobody", with_token=False)),
    ]
    server.stop(None).wait()
    gserver, gport = serve(grpc, pem)
    results.append(("grpcio server, swiftgrpc client", greet(swiftgrpc, gport, pem, "swiftgrpc")))
    gserver.stop(None)
    for what, text in results:
        print(f"{what}: {text}")
    expected = ["Hello, swiftgrpc (certificate: client.example)!",
                "Hello, grpcio (certificate: client.example)!",
                "UNAUTHENTICATED: a valid token is required",
                "Hello, swiftgrpc (certificate: client.example)!"]
    return 0 if [t for _, t in results] == expected else 1


if __name__ == "__main__":
    sys.exit(main())
