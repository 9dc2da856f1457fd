"""asyncio flavour: ``swiftgrpc.aio.Server`` and ``swiftgrpc.aio.Channel``, grpcio.aio's API.

Events reach the event loop on its own thread: each server or channel has a pull queue, whose
readiness descriptor (swiftgrpc_queue_fd) the loop watches; when it is readable the loop takes
what is queued, up to 256 events a batch, without waiting and without a thread in between. (A
loop that cannot watch descriptors gets a pump thread instead, which hands each batch over with
``call_soon_threadsafe``.) Handlers and calls run as asyncio tasks; a cancelled client call
cancels the handler's task, a cancelled task cancels its call."""
from __future__ import annotations

import asyncio
import collections
import ctypes
import inspect
import itertools
import logging
import os
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import _native as N
from ._channel import Channel as _SyncChannel
from ._credentials import ChannelCredentials
from ._common import (Batches, ChannelConnectivity, Event, state_int, Metadatum, Pump, RpcError, StatusCode, UsageError, as_bytes,
                      build_metadata, code_int, deadline_from_timeout, status_code,
                      with_compression_option)
from ._interceptors import (NOT_FOUND, PIPELINE_FAILED, _HandlerCallDetails, check_server_interceptors,
                            intercept_service_async)
from ._server import (ContextBase, NativeServer, ServerAPI, _Abort, _BadRequest, _Cancelled,
                      decode_request, failure_outcome, UNEXPECTED, send_response, unary_outcome)
# Handler constructors, re-exported so that aio code needs one import.
from ._server import (GenericRpcHandler, RpcMethodHandler, method_handlers_generic_handler,  # noqa: F401
                      stream_stream_rpc_method_handler, stream_unary_rpc_method_handler,
                      unary_stream_rpc_method_handler, unary_unary_rpc_method_handler)  # noqa: F401

__all__ = ["AbortError", "AioRpcError", "BaseError", "Call", "Channel", "ChannelArgumentType",
           "InterceptedUnaryUnaryCall", "InternalError", "RpcContext", "StreamStreamCall",
           "StreamStreamMultiCallable", "StreamUnaryCall", "StreamUnaryMultiCallable",
           "UnaryStreamCall", "UnaryStreamMultiCallable", "UnaryUnaryCall",
           "UnaryUnaryMultiCallable", "UsageError", "init_grpc_aio", "shutdown_grpc_aio",
           "ClientCallDetails", "ClientInterceptor", "EOF",
           "GenericRpcHandler", "Metadata", "RpcMethodHandler", "Server", "ServerInterceptor",
           "ServicerContext", "StreamStreamClientInterceptor", "StreamUnaryClientInterceptor",
           "UnaryStreamClientInterceptor", "UnaryUnaryClientInterceptor", "insecure_channel",
           "method_handlers_generic_handler",
           "secure_channel", "server",
           "stream_stream_rpc_method_handler", "stream_unary_rpc_method_handler",
           "unary_stream_rpc_method_handler", "unary_unary_rpc_method_handler"]

_LOG = logging.getLogger("swiftgrpc")
# Response reads a streaming call keeps asked (of SWIFTGRPC_MAX_OUTSTANDING_READS).
_READ_WINDOW = 16


_set_tag = N.swiftgrpc_call_set_tag

class _EOFType:
    def __repr__(self) -> str:
        return "<swiftgrpc.aio.EOF>"


EOF = _EOFType()  # what read() returns at the end of a stream (grpc.aio.EOF)


class AioRpcError(RpcError):
    """A call ended with a non-OK status (grpc.aio.AioRpcError)."""


def _batch_to_loop(loop: asyncio.AbstractEventLoop, on_events: Callable[[List[Event]], None]):
    def on_batch(batch: List[Event]) -> None:
        try:
            loop.call_soon_threadsafe(on_events, batch)
        except RuntimeError:  # loop closed: nobody left to tell
            pass
    return on_batch


class _QueueReader:
    """Hands a queue's events to `on_events` on the event loop's thread. The loop watches the
    queue's readiness descriptor; when it is readable, the reader clears it and takes batches
    without waiting until one comes back short of full (the queue was empty then: the next
    event signals again). A full batch leaves the rest to the next loop iteration, so that a
    busy queue does not starve the loop. `done` resolves once the queue is shut down and empty."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: int,
                 on_events: Callable[[List[Event]], None]) -> None:
        fd = ctypes.c_int(-1)
        N.check(N.swiftgrpc_queue_fd(queue, ctypes.byref(fd)), "swiftgrpc_queue_fd")
        self._loop = loop
        self._fd = fd.value
        self._batches = Batches(queue, poll=True)
        self._on_events = on_events
        self.done: asyncio.Future = loop.create_future()
        loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:  # cleared already: a spurious wake-up is harmless
            pass
        self._take()

    def _take(self) -> None:
        batches = self._batches
        if self._fd < 0:
            return
        batch = batches.next(0)
        if isinstance(batch, int):
            if batch != N.E_TIMEOUT:  # shut down (or destroyed)
                self.detach()
            return
        if len(batch) == batches.size:
            self._loop.call_soon(self._take)
        self._hand(batch)

    def _hand(self, batch: List[Event]) -> None:
        try:
            self._on_events(batch)
        except Exception:  # a broken consumer must not stop the deliveries
            _LOG.exception("swiftgrpc: an event handler failed")

    def drain(self) -> None:
        """Once the queue is shut down: hands over what is left, then ends (`done`). Needed: the
        look that takes the events queued just before the shutdown also clears the shutdown's
        signal, and no other signal follows."""
        while self._fd >= 0:
            batch = self._batches.next(0)
            if isinstance(batch, int):  # E_SHUTDOWN (E_TIMEOUT only if it was not shut down)
                self.detach()
                return
            self._hand(batch)

    def detach(self) -> None:
        """Stops watching (before the queue is destroyed, which closes the descriptor)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            if not self._loop.is_closed():
                self._loop.remove_reader(fd)
            if not self.done.done():
                self.done.set_result(None)


def _deliver(loop: asyncio.AbstractEventLoop, queue: int, on_events: Callable[[List[Event]], None],
             name: str) -> Any:
    """A _QueueReader, or a pump thread for a loop that cannot watch descriptors."""
    try:
        return _QueueReader(loop, queue, on_events)
    except NotImplementedError:
        return Pump(queue, _batch_to_loop(loop, on_events), name)


async def _delivered_all(delivery: Any) -> None:
    """Waits until `delivery` (of _deliver) has handed over the last event of its shut-down queue."""
    if isinstance(delivery, _QueueReader):
        delivery.drain()
        await delivery.done
    else:
        await asyncio.get_running_loop().run_in_executor(None, delivery.thread.join, 5)
        await asyncio.sleep(0)  # the batches it handed over run first


def _detach(delivery: Any) -> None:
    if isinstance(delivery, _QueueReader):
        delivery.detach()


# --------------------------------------------------------------------------------------------
# Server

class _Resumed:
    """Continues a coroutine that was started by hand (coro.send) inside a Task: hands the
    Task what the coroutine last yielded, then relays sends and throws, as ``yield from``."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self):
        coro, value = self.coro, self.first
        while True:
            try:
                sent = yield value
            except BaseException as e:  # cancellation and friends: into the coroutine
                try:
                    value = coro.throw(e)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _resume(coro: Any, first: Any) -> Any:
    return await _Resumed(coro, first)


class ServicerContext(ContextBase):
    """The context of an async handler (grpc.aio.ServicerContext)."""

    def __init__(self, server: "Server", ev: Event) -> None:
        self._server = server
        self._token = ev.token
        self._tag = 0  # the call's host tag: its key in Server._calls
        self._method = ev.method
        self._peer = ev.peer
        self._metadata = ev.metadata
        self._auth = ev.auth
        self._deadline_ns = ev.deadline_ns
        self._active = True
        self._done = False
        self._callbacks: List[Callable[[Any], Any]] = []
        self._code: Optional[int] = None
        self._details: Optional[str] = None
        self._trailing: Any = None
        self._initial_sent = False
        self._plain_next = False  # disable_next_message_compression
        self._req_compressed = ev.compressed
        self._task: Optional[asyncio.Task] = None
        self._waiter: Optional[asyncio.Future] = None  # a read: MESSAGE / HALF_CLOSE
        self._send_waiter: Optional[asyncio.Future] = None  # a write: SEND_DONE
        self._handler: Any = None

    def cancelled(self) -> bool:
        return self._done and not self._active

    def _server_handle(self) -> int:
        return self._server._handle

    def done(self) -> bool:
        return self._done

    def add_done_callback(self, callback: Callable[[Any], Any]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        if self._initial_sent:
            raise ValueError("initial metadata was already sent")
        arr, n = build_metadata(initial_metadata, "initial metadata")
        if N.swiftgrpc_call_send_initial_metadata(self._server._handle, self._token, arr, n) == N.E_INVALID_METADATA:
            raise ValueError(N.last_error())
        self._initial_sent = True

    async def abort(self, code: Any, details: str = "", trailing_metadata: Any = ()) -> None:
        c = code_int(code)
        if c == 0:
            raise ValueError("abort() needs a non-OK status code")
        self._code, self._details = c, details
        if trailing_metadata:
            self.set_trailing_metadata(trailing_metadata)
        raise _Abort()

    async def read(self) -> Any:
        """The next request message, or EOF (streaming-request methods)."""
        if not self._active:
            raise _Cancelled()
        if N.swiftgrpc_call_read(self._server._handle, self._token) < 0:
            raise _Cancelled()
        fut = asyncio.get_running_loop().create_future()
        self._waiter = fut
        ev = await fut
        if ev is None:
            raise _Cancelled()
        if ev.type == N.EVENT_HALF_CLOSE:
            return EOF
        self._req_compressed = ev.compressed
        d = self._handler.request_deserializer
        return d(ev.message) if d is not None else ev.message

    async def write(self, message: Any) -> None:
        """Sends one response message (streaming-response methods)."""
        ser = self._handler.response_serializer
        body = ser(message) if ser is not None else as_bytes(message, "response")
        rc = send_response(self._server._handle, self, body)
        if rc == N.E_TOO_LARGE:
            raise ValueError(N.last_error())
        if rc < 0:
            raise _Cancelled()
        # Returns once the message left (SEND_DONE): a slow client paces the handler.
        fut = asyncio.get_running_loop().create_future()
        self._send_waiter = fut
        if await fut is None:
            raise _Cancelled()

    def _terminated(self, cancelled: bool) -> None:
        if self._done:
            return
        self._done = True
        if cancelled:
            self._active = False
        for w in (self._waiter, self._send_waiter):
            if w is not None and not w.done():
                w.set_result(None)
        self._waiter = self._send_waiter = None
        for cb in self._callbacks:
            try:
                cb(self)
            except Exception:
                _LOG.exception("swiftgrpc: a done callback of %s raised", self._method)
        self._callbacks = []


class _Requests:
    """The async iterator of request messages handed to streaming-request handlers."""

    def __init__(self, ctx: ServicerContext) -> None:
        self._ctx = ctx

    def __aiter__(self) -> "_Requests":
        return self

    async def __anext__(self) -> Any:
        m = await self._ctx.read()
        if m is EOF:
            raise StopAsyncIteration
        return m


class _One:
    """An async iterator of one request: a streaming-request handler an interceptor chose for
    a method registered with a unary request."""

    def __init__(self, request: Any) -> None:
        self._request: Any = request
        self._given = False

    def __aiter__(self) -> "_One":
        return self

    async def __anext__(self) -> Any:
        if self._given:
            raise StopAsyncIteration
        self._given = True
        return self._request


class Server(ServerAPI):
    """An asyncio gRPC server (grpc.aio.Server): handlers are coroutines (or async generators
    for streaming responses); plain functions work too."""

    def __init__(self, migration_thread_pool: Any = None, handlers: Optional[Iterable[Any]] = None,
                 interceptors: Optional[Sequence[Any]] = None,
                 options: Optional[Sequence[Tuple[str, Any]]] = None,
                 maximum_concurrent_rpcs: Optional[int] = None, compression: Any = None) -> None:
        self._interceptors = check_server_interceptors(interceptors, aio=True)
        self._native = NativeServer(with_compression_option(options, compression, "a server"),
                                    maximum_concurrent_rpcs)
        self._rt = self._native.rt
        self._handle = self._native.handle
        self._methods = self._native.methods
        # The calls being served, by the host tag each is bound to (swiftgrpc_call_set_tag).
        self._calls: Dict[int, ServicerContext] = {}
        self._tags = itertools.count(1)
        self._queue = 0
        self._pump: Any = None  # a _QueueReader (or a Pump) once started
        self._started = False
        self._stopped = False
        self._forked = False  # the parent's, in a forked child
        self._terminated: Optional[asyncio.Event] = None
        self._shutdown_done: Optional[asyncio.Future] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._rt.adopt(self)
        if handlers:
            self.add_generic_rpc_handlers(handlers)

    async def start(self) -> None:
        if self._forked:
            raise UsageError("the server was created before fork(): a forked child makes its own")
        if self._started or self._stopped:
            raise UsageError("the server was already started" if self._started else "the server was stopped")
        self._loop = asyncio.get_running_loop()
        self._terminated = asyncio.Event()
        self._queue = self._rt.new_queue()
        self._native.start(self._queue)
        self._started = True
        self._pump = _deliver(self._loop, self._queue, self._on_events, "swiftgrpc-aio-server-pump")

    def _on_events(self, batch: List[Event]) -> None:
        calls = self._calls
        for ev in batch:
            t = ev.type
            if t == N.EVENT_CALL:
                ctx = ServicerContext(self, ev)
                ctx._tag = tag = next(self._tags)
                if _set_tag(self._handle, ev.token, tag) < 0:  # ended before it was bound
                    ctx._terminated(True)
                    continue
                calls[tag] = ctx
                # Run the handler eagerly: most unary handlers finish without suspending, and
                # then need no Task at all (a Task per call costs more than the call).
                coro = self._serve(ctx, ev)
                try:
                    first = coro.send(None)
                except StopIteration:
                    continue
                ctx._task = self._loop.create_task(_resume(coro, first))  # type: ignore[union-attr]
                continue
            ctx = calls.get(ev.tag) if ev.tag else None
            if ctx is None:
                if t == N.EVENT_SERVER_SHUTDOWN and self._shutdown_done is not None:
                    self._shutdown_done.set_result(None)
                continue  # or the CANCELLED of a call that ended before it was bound
            if t == N.EVENT_CANCELLED:
                del calls[ev.tag]
                ctx._terminated(True)
                if ctx._task is not None:
                    ctx._task.cancel()
            else:
                if t == N.EVENT_SEND_DONE:
                    w, ctx._send_waiter = ctx._send_waiter, None
                else:
                    w, ctx._waiter = ctx._waiter, None
                if w is not None and not w.done():
                    w.set_result(ev)

    def _finish(self, ctx: ServicerContext, message: Optional[bytes], code: int,
                details: Optional[str]) -> None:
        if ctx._done:
            return
        if self._native.complete(ctx, message, code, details) == 0:
            self._calls.pop(ctx._tag, None)
            ctx._terminated(False)

    def _lookup(self, details: Any) -> Any:
        return self._methods.get(details.method)

    async def _serve(self, ctx: ServicerContext, ev: Event) -> None:
        if self._interceptors:
            try:
                handler = await intercept_service_async(self._interceptors, self._lookup,
                                                        _HandlerCallDetails(ctx._method, ctx.invocation_metadata()))
            except asyncio.CancelledError:
                return
            except Exception as e:
                _LOG.error("swiftgrpc: Exception servicing handler: %s", e, exc_info=e)
                self._finish(ctx, None, *PIPELINE_FAILED)
                return
        else:
            handler = self._methods.get(ctx._method)
        if handler is None:
            self._finish(ctx, None, *NOT_FOUND)
            return
        ctx._handler = handler
        ser = handler.response_serializer
        try:
            streamed = ev.kind >= N.KIND_CLIENT_STREAMING  # as registered
            if handler.request_streaming:
                request: Any = _Requests(ctx) if streamed else _One(decode_request(handler, ev.message))
            elif streamed:  # an interceptor's unary-request handler for a streaming method
                request = await ctx.read()
                if request is EOF:
                    raise _BadRequest("Exactly one request required for unary call!")
            else:
                request = decode_request(handler, ev.message)
            if not handler.response_streaming:
                behavior = handler.stream_unary if handler.request_streaming else handler.unary_unary
                response = behavior(request, ctx)
                if inspect.isawaitable(response):
                    response = await response
                self._finish(ctx, *unary_outcome(ctx, response, ser))
            else:
                behavior = handler.stream_stream if handler.request_streaming else handler.unary_stream
                responses = behavior(request, ctx)
                if inspect.isawaitable(responses):  # a coroutine using context.write()
                    responses = await responses
                if responses is not None:
                    if hasattr(responses, "__aiter__"):
                        async for item in responses:
                            await ctx.write(item)
                    else:
                        for item in responses:
                            await ctx.write(item)
                code = 0 if ctx._code is None else ctx._code
                self._finish(ctx, None, code, ctx._details)
        except _Abort:
            self._finish(ctx, None, ctx._code or StatusCode.UNKNOWN.value[0], ctx._details)
        except _BadRequest as e:
            self._finish(ctx, None, StatusCode.INTERNAL.value[0], str(e))
        except (_Cancelled, asyncio.CancelledError):
            pass
        except Exception as e:
            if not ctx._done:
                self._finish(ctx, None, *failure_outcome(ctx, e, UNEXPECTED, keep_details=False))

    async def stop(self, grace: Optional[float]) -> None:
        """Stops serving; calls in flight get `grace` seconds (None: none), then are cancelled."""
        if self._stopped:
            if self._terminated is not None:
                await self._terminated.wait()
            return
        self._stopped = True
        if not self._started:
            N.swiftgrpc_server_destroy(self._handle)
            return
        grace_ms = 0 if grace is None else int(grace * 1000)
        done = self._shutdown_done = asyncio.get_running_loop().create_future()
        N.swiftgrpc_server_shutdown_notify(self._handle, grace_ms, self._queue, None)
        await done  # SERVER_SHUTDOWN: every call's last event came before it, in order
        N.swiftgrpc_queue_shutdown(self._queue)
        await _delivered_all(self._pump)  # nothing follows SERVER_SHUTDOWN: this is quick
        N.swiftgrpc_server_destroy(self._handle)  # stopped already: does not wait
        N.swiftgrpc_queue_destroy(self._queue)
        assert self._terminated is not None
        self._terminated.set()

    async def probe_host(self, method: str, request: bytes = b"", iterations: int = 1,
                         timeout: Optional[float] = None) -> float:
        """As swiftgrpc.Server.probe_host; waits in an executor thread so that the handlers keep
        running on this event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            None, self._native.probe, method, request, iterations, timeout)

    async def wait_for_termination(self, timeout: Optional[float] = None) -> bool:
        """Waits until the server stopped; True if `timeout` passed first."""
        if self._terminated is None:
            return False
        try:
            await asyncio.wait_for(self._terminated.wait(), timeout)
            return False
        except asyncio.TimeoutError:
            return True

    def _forget_after_fork(self) -> None:
        """In a forked child: the parent's server; never torn down here, refused."""
        self._stopped = self._forked = True
        self._queue = 0

    def _close_at_exit(self) -> None:
        if not self._stopped:
            self._stopped = True
            N.swiftgrpc_server_destroy(self._handle)
            if self._queue:
                _detach(self._pump)
                N.swiftgrpc_queue_destroy(self._queue)

    def __del__(self) -> None:
        try:
            self._close_at_exit()
        except Exception:
            pass


def server(migration_thread_pool: Any = None, handlers: Optional[Iterable[Any]] = None,
           interceptors: Optional[Sequence[Any]] = None,
           options: Optional[Sequence[Tuple[str, Any]]] = None,
           maximum_concurrent_rpcs: Optional[int] = None, compression: Any = None) -> Server:
    """grpc.aio.server(...)."""
    return Server(migration_thread_pool, handlers, interceptors, options,
                  maximum_concurrent_rpcs, compression)


# --------------------------------------------------------------------------------------------
# Client

class Channel:
    """An asyncio client channel (grpc.aio.Channel). Use ``async with`` or ``await close()``."""

    def __init__(self, target: str, options: Optional[Sequence[Tuple[str, Any]]] = None,
                 compression: Any = None, credentials: Optional[ChannelCredentials] = None,
                 interceptors: Optional[Sequence[Any]] = None) -> None:
        self._interceptors = check_client_interceptors(interceptors)
        self._sync = _SyncChannel(target, options, compression, credentials)
        self._handle = self._sync._handle
        self._calls: Dict[int, "_Call"] = {}
        self._queue = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._pump: Any = None  # a _QueueReader (or a Pump) once a call started

    def _ensure_pump(self) -> int:
        if self._queue == 0:
            self._loop = asyncio.get_running_loop()
            self._queue = self._sync._rt.new_queue()
            self._pump = _deliver(self._loop, self._queue, self._on_events, "swiftgrpc-aio-channel-pump")
        return self._queue

    def _on_events(self, batch: List[Event]) -> None:
        calls = self._calls
        for ev in batch:
            call = calls.get(ev.token)
            if call is not None:
                if ev.type == N.EVENT_CLIENT_STATUS:
                    del calls[ev.token]
                call._on_event(ev)

    def unary_unary(self, method: str, request_serializer: Any = None,
                    response_deserializer: Any = None, _registered_method: Any = False) -> "_MultiCallable":
        return _MultiCallable(self, method, N.KIND_UNARY, request_serializer, response_deserializer)

    def unary_stream(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: Any = False) -> "_MultiCallable":
        return _MultiCallable(self, method, N.KIND_SERVER_STREAMING, request_serializer, response_deserializer)

    def stream_unary(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: Any = False) -> "_MultiCallable":
        return _MultiCallable(self, method, N.KIND_CLIENT_STREAMING, request_serializer, response_deserializer)

    def stream_stream(self, method: str, request_serializer: Any = None,
                      response_deserializer: Any = None, _registered_method: Any = False) -> "_MultiCallable":
        return _MultiCallable(self, method, N.KIND_BIDI_STREAMING, request_serializer, response_deserializer)

    def get_state(self, try_to_connect: bool = False) -> ChannelConnectivity:
        """grpc.aio's: the connectivity state now; `try_to_connect` starts connecting if IDLE."""
        return self._sync.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: Any) -> None:
        """grpc.aio's: returns once the state differs from `last_observed_state`."""
        last = state_int(last_observed_state)
        loop = asyncio.get_running_loop()
        changed = loop.create_future()

        def listener(state: ChannelConnectivity) -> None:  # on the watcher's thread
            if state.value[0] != last:
                loop.call_soon_threadsafe(lambda: changed.done() or changed.set_result(None))
        self._sync.subscribe(listener)
        try:
            await changed
        finally:
            self._sync.unsubscribe(listener)

    async def channel_ready(self) -> None:
        """grpc.aio's: connects, and returns once the channel is READY."""
        while True:
            state = self.get_state(try_to_connect=True)
            if state == ChannelConnectivity.READY:
                return
            if state == ChannelConnectivity.SHUTDOWN:
                raise UsageError("the channel is closed")
            await self.wait_for_state_change(state)

    async def close(self, grace: Optional[float] = None) -> None:
        """Cancels the calls in flight and closes the channel."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._sync.close)  # destroy delivers every STATUS
        if self._queue:
            N.swiftgrpc_queue_shutdown(self._queue)
            if self._pump is not None:
                await _delivered_all(self._pump)  # every call's STATUS, then the end
            N.swiftgrpc_queue_destroy(self._queue)
            self._queue = 0

    async def __aenter__(self) -> "Channel":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def insecure_channel(target: str, options: Optional[Sequence[Tuple[str, Any]]] = None,
                     compression: Any = None, interceptors: Optional[Sequence[Any]] = None) -> Channel:
    """grpc.aio.insecure_channel; `interceptors` are grpc.aio client interceptors."""
    return Channel(target, options, compression, interceptors=interceptors)


def secure_channel(target: str, credentials: ChannelCredentials,
                   options: Optional[Sequence[Tuple[str, Any]]] = None, compression: Any = None,
                   interceptors: Optional[Sequence[Any]] = None) -> Channel:
    """grpc.aio.secure_channel: TLS with `credentials` (swiftgrpc.ssl_channel_credentials())."""
    if not isinstance(credentials, ChannelCredentials):
        raise TypeError(f"credentials must be ChannelCredentials (ssl_channel_credentials()), "
                        f"got {type(credentials).__name__}")
    return Channel(target, options, compression, credentials, interceptors)


class _MultiCallable:
    def __init__(self, channel: Channel, method: str, kind: int, ser: Any, deser: Any) -> None:
        if not isinstance(method, str):
            raise TypeError(f"method must be str, got {type(method).__name__}")
        self._channel = channel
        self._method = method.encode()
        self._kind = kind
        self._ser = ser
        self._deser = deser

    def __call__(self, request: Any = None, timeout: Optional[float] = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: Optional[bool] = None,
                 compression: Any = None) -> Any:
        interceptors = self._channel._interceptors
        if interceptors:
            return _InterceptedCall(self, interceptors, request, timeout, metadata, wait_for_ready,
                                    credentials, compression)
        return _Call(self, request, timeout, metadata, wait_for_ready, credentials, compression)


class _Call:
    """An async call: awaitable (unary responses), async iterable (streaming responses),
    ``read()`` / ``write()`` / ``done_writing()``, grpc.aio's Call interface."""

    def __init__(self, mc: _MultiCallable, request: Any, timeout: Optional[float], metadata: Any,
                 wait_for_ready: Optional[bool], credentials: Any = None,
                 compression: Any = None) -> None:
        ch = mc._channel
        self._ch = ch
        self._mc = mc
        kind = mc._kind
        body = None
        requests = None
        if kind in (N.KIND_UNARY, N.KIND_SERVER_STREAMING):
            body = mc._ser(request) if mc._ser is not None else as_bytes(request, "request")
        elif request is not None:
            if not (hasattr(request, "__aiter__") or hasattr(request, "__iter__")):
                raise TypeError(f"request_iterator must be an iterable or async iterable, got "
                                f"{type(request).__name__}")
            requests = request
        loop = asyncio.get_running_loop()
        self._status: asyncio.Future = loop.create_future()
        self._loop = loop
        # Initial metadata once it came, and a future for those who wait for it (made on demand:
        # most calls never ask).
        self._initial_md: Optional[Tuple[Metadatum, ...]] = None
        self._initial: Optional[asyncio.Future] = None
        self._read_waiter: Optional[asyncio.Future] = None
        self._inbox: "collections.deque[Optional[bytes]]" = collections.deque()  # None: the end
        self._reads_pending = 0  # reads asked of the library, not answered yet
        self._reading = False
        self._send_waiter: Optional[asyncio.Future] = None
        self._done_callbacks: Optional[List[Callable[[Any], Any]]] = None
        self._cancelled = False  # cancel() ended it
        self._deadline = None if timeout is None else deadline_from_timeout(timeout)
        q = ch._ensure_pump()
        self._creds = credentials  # a metadata plugin stays alive while the call is
        self._call = ch._sync._start(mc._method, kind, metadata, body, timeout, wait_for_ready, q,
                                     credentials, self._deadline, compression)
        ch._calls[self._call] = self
        self._sender: Optional[asyncio.Task] = None
        if requests is not None:
            self._sender = loop.create_task(self._send_all(requests))

    # -- events
    def _on_event(self, ev: Event) -> None:
        t = ev.type
        if t == N.EVENT_CLIENT_MESSAGE:
            self._reads_pending -= 1
            self._inbox.append(ev.message)
            w, self._read_waiter = self._read_waiter, None
            if w is not None and not w.done():
                w.set_result(None)
        elif t == N.EVENT_CLIENT_SEND_DONE:
            w, self._send_waiter = self._send_waiter, None
            if w is not None and not w.done():
                w.set_result(ev.status_code)
        elif t == N.EVENT_CLIENT_INITIAL_METADATA:
            self._got_initial(ev.metadata)
        elif t == N.EVENT_CLIENT_STATUS:
            self._set_status(ev)

    def _set_status(self, ev: Event) -> None:
        """The call is over with `ev` (the library's STATUS, or one decided here by cancel()):
        waiters wake, done callbacks run; a later STATUS changes nothing."""
        if self._status.done():
            return
        self._got_initial(ev.metadata)
        for w in (self._read_waiter, self._send_waiter):
            if w is not None and not w.done():
                w.set_result(None)
        self._status.set_result(ev)
        for cb in self._done_callbacks or ():
            try:
                cb(self)
            except Exception:
                _LOG.exception("swiftgrpc: a done callback raised")

    def _got_initial(self, md: Tuple[Metadatum, ...]) -> None:
        if self._initial_md is None:
            self._initial_md = md
            f = self._initial
            if f is not None and not f.done():
                f.set_result(md)

    def _initial_future(self) -> asyncio.Future:
        if self._initial is None:
            self._initial = self._loop.create_future()
            if self._initial_md is not None:
                self._initial.set_result(self._initial_md)
        return self._initial

    def _error(self, ev: Event) -> BaseException:
        """What awaiting the failed call raises: as in grpc.aio, asyncio.CancelledError if
        cancel() ended it, else AioRpcError."""
        if self._cancelled:
            return asyncio.CancelledError()
        return AioRpcError(status_code(ev.status_code), ev.status_message, ev.metadata, ev.trailers)

    async def _wait_status(self) -> Event:
        try:
            return await asyncio.shield(self._status)
        except asyncio.CancelledError:
            self.cancel()
            raise

    # -- unary responses
    def __await__(self):
        st = self._status
        if not st.done():
            try:
                yield from st  # not shielded: one future fewer per call
            except asyncio.CancelledError:
                if st.cancelled():  # our task's cancellation reached the status future
                    self._status = self._loop.create_future()  # the STATUS lands here
                    self.cancel()
                raise
        ev = st.result()
        if ev.status_code != 0:
            raise self._error(ev)
        if self._mc._kind in (N.KIND_SERVER_STREAMING, N.KIND_BIDI_STREAMING):
            return None
        d = self._mc._deser
        body = ev.message or b""
        return d(body) if d is not None else body

    # -- streaming responses
    def _ask_reads(self) -> None:
        """Keeps _READ_WINDOW reads asked: messages already received come without a round trip
        each. A refused read means the call is over (its STATUS follows)."""
        want = _READ_WINDOW - self._reads_pending - len(self._inbox)
        read = N.swiftgrpc_client_read
        for _ in range(want):
            if read(self._ch._handle, self._call) < 0:
                return
            self._reads_pending += 1

    async def read(self) -> Any:
        if self._reading:
            raise UsageError("a read is already in progress")
        self._reading = True
        try:
            while True:
                if self._inbox and self._inbox[0] is not None:
                    body = self._inbox.popleft()
                    if not self._status.done() and self._reads_pending + len(self._inbox) < _READ_WINDOW // 2:
                        self._ask_reads()
                    d = self._mc._deser
                    return d(body) if d is not None else body
                if self._inbox or self._status.done():  # the end of the stream, or of the call
                    ev = await self._wait_status()
                    if ev.status_code != 0:
                        raise self._error(ev)
                    return EOF
                self._ask_reads()
                fut = self._read_waiter = asyncio.get_running_loop().create_future()
                try:
                    await fut
                except asyncio.CancelledError:
                    self.cancel()
                    raise
        finally:
            self._reading = False
            self._read_waiter = None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            m = await self.read()
            if m is EOF:
                return
            yield m

    # -- streaming requests
    async def write(self, request: Any) -> None:
        if self._status.done():
            raise self._error(self._status.result()) if self._status.result().status_code else \
                UsageError("the call is over")
        ser = self._mc._ser
        body = ser(request) if ser is not None else as_bytes(request, "request")
        fut = asyncio.get_running_loop().create_future()
        self._send_waiter = fut
        rc = N.swiftgrpc_client_send_message(self._ch._handle, self._call, body, len(body))
        if rc < 0:
            self._send_waiter = None
            if rc == N.E_TOO_LARGE:
                raise ValueError(N.last_error())
            raise UsageError(f"cannot write: {N.last_error()}")
        await fut

    async def done_writing(self) -> None:
        N.swiftgrpc_client_half_close(self._ch._handle, self._call)

    async def _send_all(self, requests: Any) -> None:
        try:
            if hasattr(requests, "__aiter__"):
                async for r in requests:
                    if self._status.done():
                        return
                    await self.write(r)
            else:
                for r in requests:
                    if self._status.done():
                        return
                    await self.write(r)
            await self.done_writing()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.cancel()
            raise

    # -- Call interface
    def cancel(self) -> bool:
        """As grpcio's: at once the call is done and cancelled(), with CANCELLED "Locally
        cancelled by application!"; the server is told."""
        if self._status.done():
            return False
        N.swiftgrpc_client_cancel(self._ch._handle, self._call)
        self._cancelled = True
        self._set_status(Event.local_status(StatusCode.CANCELLED.value[0],
                                            "Locally cancelled by application!"))
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._status.done()

    def add_done_callback(self, callback: Callable[[Any], Any]) -> None:
        if self._status.done():
            callback(self)
        else:
            if self._done_callbacks is None:
                self._done_callbacks = []
            self._done_callbacks.append(callback)

    def time_remaining(self) -> Optional[float]:
        if self._deadline is None:
            return None
        return max(0.0, (self._deadline - N.now_ns()) / 1e9)

    async def initial_metadata(self) -> Tuple[Metadatum, ...]:
        return await asyncio.shield(self._initial_future())

    async def trailing_metadata(self) -> Tuple[Metadatum, ...]:
        return (await self._wait_status()).trailers

    async def code(self) -> StatusCode:
        return status_code((await self._wait_status()).status_code)

    async def details(self) -> str:
        return (await self._wait_status()).status_message

    async def wait_for_connection(self) -> None:
        await asyncio.shield(self._initial_future())


# --------------------------------------------------------------------------------------------
# Metadata and interceptors (grpc.aio's)

class Metadata:
    """grpc.aio.Metadata: request or response metadata as an ordered multi-map. ``md[key]``
    is the first value, ``get_all(key)`` every one; iterating gives (key, value) pairs, so a
    Metadata goes wherever metadata is taken."""

    def __init__(self, *pairs: Tuple[str, Any]) -> None:
        self._by_key: "collections.OrderedDict[str, List[Any]]" = collections.OrderedDict()
        for key, value in pairs:
            self.add(key, value)

    @classmethod
    def from_tuple(cls, raw_metadata: Any) -> "Metadata":
        return cls(*raw_metadata) if raw_metadata else cls()

    def add(self, key: str, value: Any) -> None:
        self._by_key.setdefault(key, []).append(value)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())

    def __getitem__(self, key: str) -> Any:
        values = self._by_key.get(key)
        if not values:
            raise KeyError(repr(key))
        return values[0]

    def __setitem__(self, key: str, value: Any) -> None:
        rest = self._by_key.get(key, [])[1:]
        self._by_key[key] = [value] + rest

    def __delitem__(self, key: str) -> None:
        values = self._by_key.get(key)
        if not values:
            raise KeyError(repr(key))
        values.pop(0)
        if not values:
            del self._by_key[key]

    def delete_all(self, key: str) -> None:
        del self._by_key[key]

    def __iter__(self) -> Any:
        return ((k, v) for k, vs in self._by_key.items() for v in vs)

    def keys(self) -> Any:
        return self._by_key.keys()

    def values(self) -> Any:
        return self._by_key.values()

    def items(self) -> Any:
        return self._by_key.items()

    def get(self, key: str, default: Any = None) -> Any:
        values = self._by_key.get(key)
        return values[0] if values else default

    def get_all(self, key: str) -> List[Any]:
        return self._by_key.get(key, [])

    def set_all(self, key: str, values: List[Any]) -> None:
        self._by_key[key] = list(values)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Metadata):
            return self._by_key == other._by_key
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> "Metadata":
        if isinstance(other, (Metadata, tuple)):
            return Metadata(*tuple(self), *tuple(other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"Metadata({tuple(self)!r})"


class ServerInterceptor:
    """grpc.aio.ServerInterceptor: ``async def intercept_service(continuation, details)``
    returns the RpcMethodHandler to serve with (``await continuation(details)``: the next
    one's), or None (UNIMPLEMENTED)."""

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        raise NotImplementedError()


class ClientCallDetails(collections.namedtuple(
        "ClientCallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready"))):
    """grpc.aio.ClientCallDetails; ``method`` is bytes, as in grpc.aio."""


class ClientInterceptor:
    """The base of grpc.aio's client interceptors."""


class UnaryUnaryClientInterceptor(ClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Returns the call (``await continuation(details, request)``) or a response."""
        raise NotImplementedError()


class UnaryStreamClientInterceptor(ClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Returns the call or an async iterator of responses."""
        raise NotImplementedError()


class StreamUnaryClientInterceptor(ClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any,
                                     request_iterator: Any) -> Any:
        raise NotImplementedError()


class StreamStreamClientInterceptor(ClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any,
                                      request_iterator: Any) -> Any:
        raise NotImplementedError()


_AIO_HOOKS = {N.KIND_UNARY: "intercept_unary_unary", N.KIND_SERVER_STREAMING: "intercept_unary_stream",
              N.KIND_CLIENT_STREAMING: "intercept_stream_unary", N.KIND_BIDI_STREAMING: "intercept_stream_stream"}


def check_client_interceptors(interceptors: Optional[Sequence[Any]]) -> Tuple[Any, ...]:
    out = tuple(interceptors or ())
    for i in out:
        if not any(callable(getattr(i, h, None)) for h in _AIO_HOOKS.values()):
            raise ValueError(f"Interceptor {i!r} must be an instance of grpc.aio's "
                             "UnaryUnary/UnaryStream/StreamUnary/StreamStream ClientInterceptor")
    return out


class _Answered:
    """What an interceptor returned instead of a call: a response (grpc.aio's
    UnaryUnaryCallResponse: OK, no metadata), or an async iterator of responses (whose status
    facts are the last real call's, as grpc.aio's UnaryStreamCallResponseIterator)."""

    def __init__(self, value: Any, call: Optional["_Call"], streaming: bool) -> None:
        self._value = value
        self._call = call if streaming else None

    def __await__(self):
        if False:  # a generator, so that `await` works
            yield
        return self._value

    def __aiter__(self) -> Any:
        return self._value.__aiter__()

    def __getattr__(self, name: str) -> Any:  # a stream's cancel, code, details, metadata...
        if self._call is None:
            raise AttributeError(name)
        return getattr(self._call, name)

    # a unary response given by the interceptor itself
    def cancel(self) -> bool:
        return self._call.cancel() if self._call is not None else False

    def cancelled(self) -> bool:
        return self._call.cancelled() if self._call is not None else False

    def done(self) -> bool:
        return self._call.done() if self._call is not None else True

    async def code(self) -> StatusCode:
        return await self._call.code() if self._call is not None else StatusCode.OK

    async def details(self) -> Optional[str]:
        return await self._call.details() if self._call is not None else None

    async def initial_metadata(self) -> Any:
        return await self._call.initial_metadata() if self._call is not None else None

    async def trailing_metadata(self) -> Any:
        return await self._call.trailing_metadata() if self._call is not None else None


class _InterceptedCall:
    """A call through the channel's interceptors (grpc.aio's Intercepted*Call): the
    interceptors run as a task; the call (or what they answered) is awaited, iterated, read
    from and written to once they are done."""

    def __init__(self, mc: "_MultiCallable", interceptors: Tuple[Any, ...], request: Any,
                 timeout: Optional[float], metadata: Any, wait_for_ready: Optional[bool],
                 credentials: Any, compression: Any) -> None:
        self._mc = mc
        self._compression = compression
        self._last: Optional[_Call] = None  # the innermost real call, once made
        self._cancelled = False
        details = ClientCallDetails(mc._method, timeout, Metadata.from_tuple(metadata or ()),
                                    credentials, wait_for_ready)
        self._hook = _AIO_HOOKS[mc._kind]
        self._task = asyncio.get_running_loop().create_task(
            self._run(list(interceptors), details, request))

    async def _run(self, interceptors: List[Any], details: Any, request: Any) -> Any:
        streaming = self._mc._kind in (N.KIND_SERVER_STREAMING, N.KIND_BIDI_STREAMING)
        while interceptors and not callable(getattr(interceptors[0], self._hook, None)):
            interceptors = interceptors[1:]  # it does not intercept this kind
        if not interceptors:
            method = details.method.decode() if isinstance(details.method, bytes) else details.method
            mc = self._mc if method.encode() == self._mc._method else _MultiCallable(
                self._mc._channel, method, self._mc._kind, self._mc._ser, self._mc._deser)
            self._last = _Call(mc, request, details.timeout, details.metadata, details.wait_for_ready,
                               details.credentials, self._compression)
            return self._last

        async def continuation(new_details: Any, new_request: Any) -> Any:
            return await self._run(interceptors[1:], new_details, new_request)
        out = getattr(interceptors[0], self._hook)(continuation, details, request)
        if inspect.isawaitable(out):
            out = await out
        if isinstance(out, (_Call, _Answered)):
            return out
        return _Answered(out, self._last, streaming)

    async def _target(self) -> Any:
        return await self._task

    def __await__(self):
        call = yield from self._task.__await__()
        return (yield from call.__await__())

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        call = await self._task
        async for m in call:
            yield m

    async def read(self) -> Any:
        return await (await self._task).read()

    async def write(self, request: Any) -> None:
        await (await self._task).write(request)

    async def done_writing(self) -> None:
        await (await self._task).done_writing()

    def cancel(self) -> bool:
        if not self._task.done():
            self._cancelled = True
            self._task.cancel()
            if self._last is not None:
                self._last.cancel()
            return True
        if self._task.cancelled() or self._task.exception() is not None:
            return False
        return self._task.result().cancel()

    def cancelled(self) -> bool:
        if self._cancelled:
            return True
        return self._last.cancelled() if self._last is not None else False

    def done(self) -> bool:
        if not self._task.done():
            return False
        if self._task.cancelled() or self._task.exception() is not None:
            return True
        return self._last.done() if self._last is not None else True

    def add_done_callback(self, callback: Callable[[Any], Any]) -> None:
        def interceptors_done(task: asyncio.Task) -> None:
            if self._last is None or task.cancelled():  # answered by an interceptor, or cancelled
                callback(self)
            else:  # then when the real call ends
                self._last.add_done_callback(lambda _: callback(self))
        self._task.add_done_callback(interceptors_done)

    def time_remaining(self) -> Optional[float]:
        return self._last.time_remaining() if self._last is not None else None

    async def initial_metadata(self) -> Any:
        return await (await self._task).initial_metadata()

    async def trailing_metadata(self) -> Any:
        return await (await self._task).trailing_metadata()

    async def code(self) -> StatusCode:
        try:
            return await (await self._task).code()
        except asyncio.CancelledError:
            return StatusCode.CANCELLED

    async def details(self) -> str:
        try:
            return await (await self._task).details()
        except asyncio.CancelledError:
            return "Locally cancelled by application!"

    async def wait_for_connection(self) -> None:
        await (await self._task).wait_for_connection()


# --------------------------------------------------------------------------------------------
# grpc.aio's other public names

from ._common import AbortError, BaseError, InternalError  # noqa: E402,F401
from ._api import RpcContext as _SyncRpcContext  # noqa: E402
import abc as _abc  # noqa: E402

ChannelArgumentType = Sequence[Tuple[str, Any]]
InterceptedUnaryUnaryCall = _InterceptedCall


class RpcContext(_SyncRpcContext):
    """grpc.aio.RpcContext."""


class Call(RpcContext):
    """grpc.aio.Call: awaitable initial_metadata, trailing_metadata, code, details."""


class UnaryUnaryCall(Call):
    """grpc.aio.UnaryUnaryCall: awaiting it gives the response."""


class UnaryStreamCall(Call):
    """grpc.aio.UnaryStreamCall: read() or async iteration."""


class StreamUnaryCall(Call):
    """grpc.aio.StreamUnaryCall: write(), done_writing(), then await."""


class StreamStreamCall(Call):
    """grpc.aio.StreamStreamCall: write(), done_writing(), read() or async iteration."""


class UnaryUnaryMultiCallable(_abc.ABC):
    """grpc.aio.UnaryUnaryMultiCallable."""


class UnaryStreamMultiCallable(_abc.ABC):
    """grpc.aio.UnaryStreamMultiCallable."""


class StreamUnaryMultiCallable(_abc.ABC):
    """grpc.aio.StreamUnaryMultiCallable."""


class StreamStreamMultiCallable(_abc.ABC):
    """grpc.aio.StreamStreamMultiCallable."""


for _cls in (Call, UnaryUnaryCall, UnaryStreamCall, StreamUnaryCall, StreamStreamCall):
    _cls.register(_Call)
    _cls.register(_InterceptedCall)
for _cls in (UnaryUnaryMultiCallable, UnaryStreamMultiCallable, StreamUnaryMultiCallable,
             StreamStreamMultiCallable):
    _cls.register(_MultiCallable)
RpcContext.register(ServicerContext)


def init_grpc_aio() -> None:
    """grpc.aio's: nothing to do in swiftgrpc (its runtime starts on first use)."""


def shutdown_grpc_aio() -> None:
    """grpc.aio's: nothing to do in swiftgrpc (its runtime ends at exit)."""
