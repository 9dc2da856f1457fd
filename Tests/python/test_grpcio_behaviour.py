"""grpcio's behaviour where code written for it depends on it (issue 18, item 5): the same
handlers served by grpcio and by swiftgrpc, called by a grpcio client, must end the same way."""
import asyncio
import logging
import threading
from concurrent import futures

import grpc
import grpc.aio
import pytest

import swiftgrpc
import swiftgrpc.aio

IMPLS = ["grpcio", "swiftgrpc"]


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text")


def _sync_handlers():
    def boom(req, ctx):
        raise RuntimeError("boom")

    def boom_with_code(req, ctx):
        ctx.set_code(grpc.StatusCode.NOT_FOUND)
        raise RuntimeError("boom2")

    def boom_with_details(req, ctx):
        ctx.set_details("mine")
        raise ValueError("v")

    def unprintable(req, ctx):
        raise Unprintable()

    def stream_boom(req, ctx):
        yield b"a"
        raise RuntimeError("sboom")

    def not_implemented(req, ctx):
        raise NotImplementedError("later")

    return boom, boom_with_code, boom_with_details, unprintable, stream_boom, not_implemented


def _aio_handlers():
    async def boom(req, ctx):
        raise RuntimeError("boom")

    async def boom_with_code(req, ctx):
        ctx.set_code(grpc.StatusCode.NOT_FOUND)
        raise RuntimeError("boom2")

    async def boom_with_details(req, ctx):
        ctx.set_details("mine")
        raise ValueError("v")

    async def unprintable(req, ctx):
        raise Unprintable()

    async def stream_boom(req, ctx):
        yield b"a"
        raise RuntimeError("sboom")

    async def not_implemented(req, ctx):
        raise NotImplementedError("later")

    return boom, boom_with_code, boom_with_details, unprintable, stream_boom, not_implemented


NAMES = ["Boom", "BoomWithCode", "BoomWithDetails", "Unprintable", "StreamBoom", "NotImplemented"]


def _generic(mod, fns):
    h = {n: mod.unary_unary_rpc_method_handler(f) for n, f in zip(NAMES, fns) if n != "StreamBoom"}
    h["StreamBoom"] = mod.unary_stream_rpc_method_handler(fns[NAMES.index("StreamBoom")])
    return mod.method_handlers_generic_handler("behaviour.S", h)


def _outcomes(port, skip=()):
    """What a grpcio client sees from each method: (code, details)."""
    out = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        for n in NAMES:
            if n in skip:
                continue
            try:
                if n == "StreamBoom":
                    list(ch.unary_stream(f"/behaviour.S/{n}")(b"x", timeout=10))
                else:
                    ch.unary_unary(f"/behaviour.S/{n}")(b"x", timeout=10)
                out[n] = (grpc.StatusCode.OK, None)
            except grpc.RpcError as e:
                out[n] = (e.code(), e.details())
    return out


def _sync_outcomes(impl):
    mod = grpc if impl == "grpcio" else swiftgrpc
    s = mod.server(futures.ThreadPoolExecutor(max_workers=4))
    s.add_generic_rpc_handlers([_generic(mod, _sync_handlers())])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    try:
        return _outcomes(port)
    finally:
        s.stop(None)


def _aio_outcomes(impl):
    mod = grpc.aio if impl == "grpcio" else swiftgrpc.aio
    hmod = grpc if impl == "grpcio" else swiftgrpc.aio

    async def main():
        s = mod.server()
        s.add_generic_rpc_handlers([_generic(hmod, _aio_handlers())])
        port = s.add_insecure_port("127.0.0.1:0")
        await s.start()
        try:
            # grpcio's asyncio server never answers a call whose exception cannot be printed
            # (its handler raises again while logging): skipped there, checked here.
            skip = ("Unprintable",) if impl == "grpcio" else ()
            return await asyncio.get_running_loop().run_in_executor(None, _outcomes, port, skip)
        finally:
            await s.stop(None)
    return asyncio.run(main())


@pytest.fixture(scope="module")
def quiet():
    logging.disable(logging.CRITICAL)  # both servers log each exception with its traceback
    yield
    logging.disable(logging.NOTSET)


def test_sync_handler_exceptions_end_as_in_grpcio(quiet):
    theirs, ours = _sync_outcomes("grpcio"), _sync_outcomes("swiftgrpc")
    assert ours == theirs
    # what grpcio answers, spelled out, so that a change in either is seen for what it is
    assert ours["Boom"] == (grpc.StatusCode.UNKNOWN, "Exception calling application: boom")
    assert ours["BoomWithCode"] == (grpc.StatusCode.NOT_FOUND, "Exception calling application: boom2")
    assert ours["BoomWithDetails"] == (grpc.StatusCode.UNKNOWN, "mine")
    assert ours["StreamBoom"] == (grpc.StatusCode.UNKNOWN, "Exception iterating responses: sboom")
    assert ours["NotImplemented"][0] == grpc.StatusCode.UNKNOWN


def test_aio_handler_exceptions_end_as_in_grpcio(quiet):
    theirs, ours = _aio_outcomes("grpcio"), _aio_outcomes("swiftgrpc")
    assert ours.pop("Unprintable") == (grpc.StatusCode.UNKNOWN,
                                       "Calling application raised unprintable Exception!")
    assert ours == theirs
    assert ours["Boom"] == (grpc.StatusCode.UNKNOWN, "Unexpected <class 'RuntimeError'>: boom")
    assert ours["BoomWithDetails"] == (grpc.StatusCode.UNKNOWN, "Unexpected <class 'ValueError'>: v")


def test_handler_exception_is_logged_with_its_traceback(caplog):
    s = swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=2))
    s.add_generic_rpc_handlers([_generic(swiftgrpc, _sync_handlers())])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    try:
        with caplog.at_level(logging.ERROR, logger="swiftgrpc"):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                with pytest.raises(grpc.RpcError):
                    ch.unary_unary("/behaviour.S/Boom")(b"x", timeout=10)
        rec = [r for r in caplog.records if "Exception calling application: boom" in r.getMessage()]
        assert rec and rec[0].exc_info and rec[0].exc_info[0] is RuntimeError
    finally:
        s.stop(None)


def _blocking_server(impl, entered, release, limit):
    mod = grpc if impl == "grpcio" else swiftgrpc

    def hold(req, ctx):
        entered.set()
        release.wait(30)
        return req

    s = mod.server(futures.ThreadPoolExecutor(max_workers=4), maximum_concurrent_rpcs=limit)
    s.add_generic_rpc_handlers([mod.method_handlers_generic_handler(
        "behaviour.S", {"Hold": mod.unary_unary_rpc_method_handler(hold),
                        "Echo": mod.unary_unary_rpc_method_handler(lambda req, ctx: req)})])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    return s, port


@pytest.mark.parametrize("impl", IMPLS)
def test_maximum_concurrent_rpcs_answers_resource_exhausted(impl):
    entered, release = threading.Event(), threading.Event()
    s, port = _blocking_server(impl, entered, release, 1)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            first = ch.unary_unary("/behaviour.S/Hold").future(b"1", timeout=30)
            assert entered.wait(10)
            with pytest.raises(grpc.RpcError) as e:  # at once, not after the first one ends
                ch.unary_unary("/behaviour.S/Echo")(b"2", timeout=10)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert e.value.details() == "Concurrent RPC limit exceeded!"
            assert not first.done()
            release.set()
            assert first.result(timeout=10) == b"1"
            # the place is given back once the call ended: the next call is served
            assert ch.unary_unary("/behaviour.S/Echo")(b"3", timeout=10) == b"3"
    finally:
        release.set()
        s.stop(None)


def test_maximum_concurrent_rpcs_on_asyncio_server():
    async def main():
        both_in, release = asyncio.Event(), asyncio.Event()
        inside = []

        async def hold(req, ctx):
            inside.append(req)
            if len(inside) == 2:
                both_in.set()
            await release.wait()
            return req

        s = swiftgrpc.aio.server(maximum_concurrent_rpcs=2)
        s.add_generic_rpc_handlers([swiftgrpc.aio.method_handlers_generic_handler(
            "behaviour.S", {"Hold": swiftgrpc.aio.unary_unary_rpc_method_handler(hold)})])
        port = s.add_insecure_port("127.0.0.1:0")
        await s.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                held = [asyncio.ensure_future(ch.unary_unary("/behaviour.S/Hold")(b"h", timeout=30))
                        for _ in range(2)]
                await asyncio.wait_for(both_in.wait(), 10)
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await ch.unary_unary("/behaviour.S/Hold")(b"x", timeout=10)
                assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                release.set()
                assert await asyncio.gather(*held) == [b"h", b"h"]
                assert inside == [b"h", b"h"]  # the refused call never reached the handler
        finally:
            await s.stop(None)
    asyncio.run(main())


@pytest.mark.parametrize("bad", [0, -1, 1 << 31, 1.5, "3", True])
def test_maximum_concurrent_rpcs_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="maximum_concurrent_rpcs"):
        swiftgrpc.server(futures.ThreadPoolExecutor(max_workers=1), maximum_concurrent_rpcs=bad)


def _cancel_facts(mod, port):
    """What a client of `mod` reports about calls it cancels, right after cancel()."""
    facts = {}
    with mod.insecure_channel(f"127.0.0.1:{port}") as ch:
        f = ch.unary_unary("/behaviour.S/Hold").future(b"x", timeout=30)
        seen = []
        f.add_done_callback(lambda fut: seen.append(fut.cancelled()))
        facts["future"] = (f.cancel(), f.cancelled(), f.done(), f.running(),
                           f.code(), f.details(), f.cancel())
        facts["callback_at_once"] = list(seen)  # grpcio runs it later, from its own thread
        with pytest.raises(grpc.FutureCancelledError):  # swiftgrpc's is grpc's subclass
            f.result()
        with pytest.raises(grpc.FutureCancelledError):
            f.exception()
        # gRPC's interop case cancel_after_begin: a client stream cancelled before any request
        # (its request iterator has none to give yet)
        held = threading.Event()

        def nothing_yet():
            held.wait(30)
            yield from ()
        g = ch.stream_unary("/behaviour.S/Sink").future(nothing_yet(), timeout=30)
        facts["cancel_after_begin"] = (g.cancel(), g.cancelled(), g.code())
        held.set()
        it = ch.unary_stream("/behaviour.S/Many")(b"y", timeout=30)
        facts["stream"] = (it.cancel(), it.code(), it.details(), it.done(), it.is_active())
        with pytest.raises(grpc.RpcError) as e:
            next(it)
        facts["stream_next"] = (e.value.code(), e.value.details())
    return facts


def test_cancel_ends_a_call_at_once_as_in_grpcio():
    release = threading.Event()

    def sink(requests, ctx):
        for _ in requests:
            pass
        return b""

    s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    s.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("behaviour.S", {
        "Hold": grpc.unary_unary_rpc_method_handler(lambda req, ctx: release.wait(30) and req),
        "Sink": grpc.stream_unary_rpc_method_handler(sink),
        "Many": grpc.unary_stream_rpc_method_handler(lambda req, ctx: (req for _ in iter(release.is_set, True))),
    })])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    try:
        theirs, ours = _cancel_facts(grpc, port), _cancel_facts(swiftgrpc, port)
        assert ours.pop("callback_at_once") == [True]
        theirs.pop("callback_at_once")
        assert ours == theirs
        assert ours["future"] == (True, True, True, False, grpc.StatusCode.CANCELLED,
                                  "Locally cancelled by application!", False)
        assert ours["cancel_after_begin"] == (True, True, grpc.StatusCode.CANCELLED)
    finally:
        release.set()
        s.stop(None)


def test_aio_cancel_is_done_at_once():
    async def main():
        release = asyncio.Event()

        async def hold(req, ctx):
            await release.wait()
            return req

        s = grpc.aio.server()
        s.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "behaviour.S", {"Hold": grpc.unary_unary_rpc_method_handler(hold)})])
        port = s.add_insecure_port("127.0.0.1:0")
        await s.start()
        facts = {}
        try:
            for name, mod in (("grpcio", grpc.aio), ("swiftgrpc", swiftgrpc.aio)):
                async with mod.insecure_channel(f"127.0.0.1:{port}") as ch:
                    call = ch.unary_unary("/behaviour.S/Hold")(b"x", timeout=30)
                    seen = []
                    call.add_done_callback(lambda c: seen.append(c.cancelled()))
                    first = (call.cancel(), call.cancelled(), call.done(), list(seen))
                    with pytest.raises(asyncio.CancelledError):
                        await call
                    facts[name] = first + (await call.code(), await call.details(), call.cancel())
        finally:
            release.set()
            await s.stop(None)
        return facts
    facts = asyncio.run(main())
    assert facts["swiftgrpc"][:3] == (True, True, True)
    assert facts["swiftgrpc"][4:] == facts["grpcio"][4:] == (
        grpc.StatusCode.CANCELLED, "Locally cancelled by application!", False)


EXIT_AFTER_CANCELS = r"""
import sys
import swiftgrpc
ch = swiftgrpc.insecure_channel(sys.argv[1])
fs = [ch.unary_unary("/behaviour.S/Hold").future(b"x", timeout=30) for _ in range(50)]
assert all(f.cancel() for f in fs[::2])
left = fs[1::2]  # still running at exit: neither closed nor cancelled
print("exiting", flush=True)
"""


def test_exit_after_cancelled_futures_is_clean(tmp_path):
    import os
    import subprocess
    import sys
    release = threading.Event()
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    s.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("behaviour.S", {
        "Hold": grpc.unary_unary_rpc_method_handler(lambda req, ctx: release.wait(30) and req)})])
    port = s.add_insecure_port("127.0.0.1:0")
    s.start()
    script = tmp_path / "exit_after_cancels.py"
    script.write_text(EXIT_AFTER_CANCELS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    try:
        for _ in range(3):  # the race at exit did not show every time
            p = subprocess.run([sys.executable, str(script), f"127.0.0.1:{port}"], capture_output=True,
                               text=True, timeout=60, env=env)
            assert p.returncode == 0, p.stderr
            assert p.stdout == "exiting\n"
            assert "Traceback" not in p.stderr and "Error" not in p.stderr, p.stderr
    finally:
        release.set()
        s.stop(None)
