"""Interceptors with grpcio's classes and semantics (issue 18, item 2): the same interceptor code,
written against `mod` (grpc or swiftgrpc, as `import swiftgrpc as grpc` would make it), must
behave the same on grpcio and on swiftgrpc, sync and asyncio, server and client side."""
import asyncio
import logging
from concurrent import futures

import grpc
import grpc.aio
import pytest

import swiftgrpc
import swiftgrpc.aio

IMPLS = ["grpcio", "swiftgrpc"]
MODS = {"grpcio": grpc, "swiftgrpc": swiftgrpc}
AIO = {"grpcio": grpc.aio, "swiftgrpc": swiftgrpc.aio}
SERVICE = "icpt.S"


def _echo_metadata(ctx):
    """The request's metadata that the test cares about, as one string."""
    return ",".join(f"{k}={v}" for k, v in ctx.invocation_metadata() if k.startswith("x-"))


def _handlers(mod):
    def unary(req, ctx):
        return req + b"|" + _echo_metadata(ctx).encode()

    def server_stream(req, ctx):
        for i in range(3):
            yield req + str(i).encode()

    def client_stream(reqs, ctx):
        return b"+".join(reqs)

    def bidi(reqs, ctx):
        for r in reqs:
            yield r.upper()

    return mod.method_handlers_generic_handler(SERVICE, {
        "Unary": mod.unary_unary_rpc_method_handler(unary),
        "ServerStream": mod.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": mod.stream_unary_rpc_method_handler(client_stream),
        "Bidi": mod.stream_stream_rpc_method_handler(bidi),
    })


def _auth_interceptor(mod, log):
    """An interceptor in the shape of gRPC's auth example: calls without the right bearer token
    are answered UNAUTHENTICATED by a handler it returns instead of the method's."""

    def deny(request, context):
        context.abort(mod.StatusCode.UNAUTHENTICATED, "Invalid signature")

    class Auth(mod.ServerInterceptor):
        def intercept_service(self, continuation, handler_call_details):
            log.append(("auth", handler_call_details.method))
            md = dict(handler_call_details.invocation_metadata)
            if md.get("authorization") == "Bearer ok":
                return continuation(handler_call_details)
            return mod.unary_unary_rpc_method_handler(deny)
    return Auth()


def _recorder(mod, name, log):
    class Record(mod.ServerInterceptor):
        def intercept_service(self, continuation, details):
            log.append((name, details.method))
            return continuation(details)
    return Record()


def _serve(impl, interceptors):
    mod = MODS[impl]
    s = mod.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=interceptors)
    s.add_generic_rpc_handlers([_handlers(mod)])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    return s, f"127.0.0.1:{port}"


def _every_kind(ch, metadata):
    """(code, result) of one call of each kind, by a grpcio channel."""
    out = {}
    calls = {
        "Unary": lambda: ch.unary_unary(f"/{SERVICE}/Unary")(b"u", metadata=metadata, timeout=10),
        "ServerStream": lambda: list(ch.unary_stream(f"/{SERVICE}/ServerStream")(
            b"s", metadata=metadata, timeout=10)),
        "ClientStream": lambda: ch.stream_unary(f"/{SERVICE}/ClientStream")(
            iter([b"a", b"b"]), metadata=metadata, timeout=10),
        "Bidi": lambda: list(ch.stream_stream(f"/{SERVICE}/Bidi")(
            iter([b"x", b"y"]), metadata=metadata, timeout=10)),
    }
    for name, call in calls.items():
        try:
            out[name] = ("OK", call())
        except grpc.RpcError as e:
            out[name] = (e.code(), e.details())
    return out


def _server_outcomes(impl, metadata):
    log = []
    s, target = _serve(impl, [_recorder(MODS[impl], "outer", log), _auth_interceptor(MODS[impl], log),
                              _recorder(MODS[impl], "inner", log)])
    try:
        with grpc.insecure_channel(target) as ch:
            return _every_kind(ch, metadata), log
    finally:
        s.stop(None)


@pytest.mark.parametrize("metadata", [None, [("authorization", "Bearer bad")],
                                      [("authorization", "Bearer ok"), ("x-k", "v")]])
def test_server_auth_interceptor_as_in_grpcio(metadata):
    theirs, their_log = _server_outcomes("grpcio", metadata)
    ours, our_log = _server_outcomes("swiftgrpc", metadata)
    assert ours == theirs
    assert our_log == their_log  # outermost first; "inner" only runs for let-through calls
    if metadata and metadata[0] == ("authorization", "Bearer ok"):
        assert ours["Unary"] == ("OK", b"u|x-k=v")
        assert ours["Bidi"] == ("OK", [b"X", b"Y"])
    else:  # the denying unary handler also answers the streaming methods
        assert set(ours.values()) == {(grpc.StatusCode.UNAUTHENTICATED, "Invalid signature")}


class _Raises:
    def intercept_service(self, continuation, details):
        raise RuntimeError("interceptor broke")


class _NoHandler:
    def intercept_service(self, continuation, details):
        return None


@pytest.mark.parametrize("interceptor", [_Raises(), _NoHandler()])
def test_server_pipeline_failures_as_in_grpcio(interceptor):
    logging.disable(logging.CRITICAL)
    try:
        outcomes = {}
        for impl in IMPLS:
            s, target = _serve(impl, [interceptor])
            try:
                with grpc.insecure_channel(target) as ch:
                    outcomes[impl] = _every_kind(ch, None)
            finally:
                s.stop(None)
    finally:
        logging.disable(logging.NOTSET)
    assert outcomes["swiftgrpc"] == outcomes["grpcio"]
    want = ((grpc.StatusCode.UNKNOWN, "Error in service handler!") if isinstance(interceptor, _Raises)
            else (grpc.StatusCode.UNIMPLEMENTED, "Method not found!"))
    assert set(outcomes["swiftgrpc"].values()) == {want}


def test_server_interceptor_must_intercept_service():
    with pytest.raises(TypeError):
        swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=1), interceptors=[object()])


# -- client side, sync

def _client_interceptors(mod, log):
    """One interceptor of all four kinds, as in gRPC's header-manipulator example: it adds a
    header through a new ClientCallDetails, and records what it saw and got."""

    class Details(mod.ClientCallDetails):  # users subclass it, as grpcio's examples do
        def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
            self.method, self.timeout, self.metadata = method, timeout, metadata
            self.credentials, self.wait_for_ready, self.compression = credentials, wait_for_ready, compression

    class AddHeader(mod.UnaryUnaryClientInterceptor, mod.UnaryStreamClientInterceptor,
                    mod.StreamUnaryClientInterceptor, mod.StreamStreamClientInterceptor):
        def __init__(self, key, value):
            self.key, self.value = key, value

        def _new(self, d):
            md = list(d.metadata or ()) + [(self.key, self.value)]
            return Details(d.method, d.timeout, md, d.credentials, d.wait_for_ready, d.compression)

        def intercept_unary_unary(self, continuation, d, request):
            log.append((self.key, "unary_unary", d.method, d.timeout))
            outcome = continuation(self._new(d), request)
            log.append((self.key, "got", outcome.code(), outcome.done()))
            return outcome

        def intercept_unary_stream(self, continuation, d, request):
            log.append((self.key, "unary_stream", d.method))
            return continuation(self._new(d), request)

        def intercept_stream_unary(self, continuation, d, request_iterator):
            log.append((self.key, "stream_unary", d.method))
            return continuation(self._new(d), request_iterator)

        def intercept_stream_stream(self, continuation, d, request_iterator):
            log.append((self.key, "stream_stream", d.method))
            return continuation(self._new(d), request_iterator)

    return [AddHeader("x-first", "1"), AddHeader("x-second", "2")]


def _client_outcomes(impl, target):
    mod = MODS[impl]
    log = []
    with mod.insecure_channel(target) as raw:
        ch = mod.intercept_channel(raw, *_client_interceptors(mod, log))
        out = _every_kind(ch, [("x-caller", "c")])
        unary = ch.unary_unary(f"/{SERVICE}/Unary")
        resp, call = unary.with_call(b"w", timeout=10)
        out["with_call"] = (resp, call.code())
        fut = unary.future(b"f", timeout=10)
        out["future"] = (fut.result(timeout=10), fut.code())
        with pytest.raises(grpc.RpcError) as e:  # an error goes through the interceptors too
            ch.unary_unary(f"/{SERVICE}/Missing")(b"", timeout=10)
        out["missing"] = e.value.code()
    return out, log


def test_client_interceptors_as_in_grpcio():
    s, target = _serve("grpcio", None)
    try:
        theirs, their_log = _client_outcomes("grpcio", target)
        ours, our_log = _client_outcomes("swiftgrpc", target)
    finally:
        s.stop(None)
    assert ours == theirs
    assert our_log == their_log
    # the headers were added in order, the first interceptor outermost
    assert ours["Unary"] == ("OK", b"u|x-caller=c,x-first=1,x-second=2")
    assert our_log[:4] == [("x-first", "unary_unary", f"/{SERVICE}/Unary", 10),
                           ("x-second", "unary_unary", f"/{SERVICE}/Unary", 10),
                           ("x-second", "got", grpc.StatusCode.OK, True),
                           ("x-first", "got", grpc.StatusCode.OK, True)]


class _Broken(swiftgrpc.UnaryUnaryClientInterceptor):
    def intercept_unary_unary(self, continuation, d, request):
        raise KeyError("client interceptor broke")


def test_client_interceptor_exceptions_and_bad_interceptors():
    s, target = _serve("grpcio", None)
    try:
        with swiftgrpc.insecure_channel(target) as raw:
            ch = swiftgrpc.intercept_channel(raw, _Broken())
            with pytest.raises(KeyError):  # as grpcio: the interceptor's exception, raised
                ch.unary_unary(f"/{SERVICE}/Unary")(b"u", timeout=10)
            fut = ch.unary_unary(f"/{SERVICE}/Unary").future(b"u", timeout=10)
            assert isinstance(fut.exception(), KeyError) and fut.code() == grpc.StatusCode.INTERNAL
            # other kinds are not intercepted by it
            assert list(ch.unary_stream(f"/{SERVICE}/ServerStream")(b"s", timeout=10)) == [b"s0", b"s1", b"s2"]
        with pytest.raises(TypeError):
            swiftgrpc.intercept_channel(raw, object())
    finally:
        s.stop(None)


# -- asyncio

def _aio_server_interceptor(aio, log):
    class Auth(aio.ServerInterceptor):
        async def intercept_service(self, continuation, details):
            log.append(details.method)
            if ("authorization", "Bearer ok") in details.invocation_metadata:
                return await continuation(details)

            async def deny(request, context):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "Invalid signature")
            return grpc.unary_unary_rpc_method_handler(deny)
    return Auth()


def _aio_client_interceptors(aio, log):
    class AddHeader(aio.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation, d, request):
            md = aio.Metadata(*tuple(d.metadata or ()))
            md.add("x-aio", "1")
            log.append(("before", d.method))
            call = await continuation(aio.ClientCallDetails(d.method, d.timeout, md, d.credentials,
                                                            d.wait_for_ready), request)
            log.append(("after", await call.code()))
            return call

    class Collect(aio.UnaryStreamClientInterceptor):
        async def intercept_unary_stream(self, continuation, d, request):
            call = await continuation(d, request)

            async def doubled():
                async for m in call:
                    yield m + m
            return doubled()

    class Answer(aio.UnaryUnaryClientInterceptor):  # answers itself, no call made
        async def intercept_unary_unary(self, continuation, d, request):
            if request == b"cached":
                return b"from the cache"
            return await continuation(d, request)

    return [AddHeader(), Collect(), Answer()]


def _aio_outcomes(server_impl, client_impl):
    async def main():
        slog, clog = [], []
        aio = AIO[server_impl]
        s = aio.server(interceptors=[_aio_server_interceptor(aio, slog)])

        async def unary(req, ctx):
            return req + b"|" + _echo_metadata(ctx).encode()

        async def stream(req, ctx):
            for i in range(2):
                yield req + str(i).encode()
        hmod = grpc if server_impl == "grpcio" else swiftgrpc.aio
        s.add_generic_rpc_handlers([hmod.method_handlers_generic_handler(SERVICE, {
            "Unary": hmod.unary_unary_rpc_method_handler(unary),
            "ServerStream": hmod.unary_stream_rpc_method_handler(stream)})])
        port = s.add_insecure_port("127.0.0.1:0")
        await s.start()
        out = {}
        caio = AIO[client_impl]
        try:
            async with caio.insecure_channel(f"127.0.0.1:{port}",
                                             interceptors=_aio_client_interceptors(caio, clog)) as ch:
                ok = [("authorization", "Bearer ok")]
                out["unary"] = await ch.unary_unary(f"/{SERVICE}/Unary")(b"u", metadata=ok, timeout=10)
                out["cached"] = await ch.unary_unary(f"/{SERVICE}/Unary")(b"cached", timeout=10)
                out["stream"] = [m async for m in ch.unary_stream(f"/{SERVICE}/ServerStream")(
                    b"s", metadata=ok, timeout=10)]
                with pytest.raises(grpc.RpcError) as e:
                    await ch.unary_unary(f"/{SERVICE}/Unary")(b"u", timeout=10)
                out["denied"] = (e.value.code(), e.value.details())
        finally:
            await s.stop(None)
        return out, slog, clog
    return asyncio.run(main())


@pytest.mark.parametrize("server_impl,client_impl", [("grpcio", "swiftgrpc"), ("swiftgrpc", "grpcio"),
                                                     ("swiftgrpc", "swiftgrpc")])
def test_aio_interceptors_as_in_grpcio(server_impl, client_impl):
    assert _aio_outcomes(server_impl, client_impl) == _aio_outcomes("grpcio", "grpcio")
    out, slog, clog = _aio_outcomes(server_impl, client_impl)
    assert out == {"unary": b"u|x-aio=1", "cached": b"from the cache", "stream": [b"s0s0", b"s1s1"],
                   "denied": (grpc.StatusCode.UNAUTHENTICATED, "Invalid signature")}
    assert slog == [f"/{SERVICE}/Unary", f"/{SERVICE}/ServerStream", f"/{SERVICE}/Unary"]
