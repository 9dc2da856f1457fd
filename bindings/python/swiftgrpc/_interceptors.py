"""Interceptors with grpcio's classes and semantics (sync): ``ServerInterceptor``, the four
client interceptor kinds, ``HandlerCallDetails``, ``ClientCallDetails`` and
``intercept_channel``. The asyncio flavour is in ``aio``; both share the server pipeline."""
from __future__ import annotations

import abc
import collections
import sys
from typing import Any, Callable, Optional, Sequence, Tuple

from ._common import RpcError, StatusCode


# --------------------------------------------------------------------------------------------
# Server side

class HandlerCallDetails(abc.ABC):
    """What a server interceptor learns of a call before its handler is chosen: ``method``
    ("/pkg.Service/Method") and ``invocation_metadata`` (a tuple of (key, value))."""
    method: str
    invocation_metadata: Tuple[Any, ...]


class _HandlerCallDetails(
        collections.namedtuple("_HandlerCallDetails", ("method", "invocation_metadata")),
        HandlerCallDetails):
    pass


class ServerInterceptor(abc.ABC):
    """grpcio's ``grpc.ServerInterceptor``."""

    @abc.abstractmethod
    def intercept_service(self, continuation: Callable[[Any], Any],
                          handler_call_details: HandlerCallDetails) -> Any:
        """Returns the RpcMethodHandler to serve the call with (``continuation(details)``
        gives the next interceptor's, and finally the registered one), or None: UNIMPLEMENTED."""
        raise NotImplementedError()


# What grpcio answers when the pipeline fails: no handler, or an interceptor that raised.
NOT_FOUND = (StatusCode.UNIMPLEMENTED.value[0], "Method not found!")
PIPELINE_FAILED = (StatusCode.UNKNOWN.value[0], "Error in service handler!")


def check_server_interceptors(interceptors: Optional[Sequence[Any]], aio: bool = False) -> Tuple[Any, ...]:
    """The server's interceptors, each checked to have intercept_service (as grpcio checks)."""
    if not interceptors:
        return ()
    out = tuple(interceptors)
    for i in out:
        if not callable(getattr(i, "intercept_service", None)):
            kind = "grpc.aio.ServerInterceptor" if aio else "grpc.ServerInterceptor"
            raise TypeError(f"interceptor must be a {kind}, got {type(i).__name__}")
    return out


def intercept_service(interceptors: Tuple[Any, ...], lookup: Callable[[Any], Any],
                      details: HandlerCallDetails) -> Any:
    """Runs the sync pipeline: interceptors[0] outermost, `lookup` (the registered handler of
    details.method) innermost; grpcio's _ServicePipeline."""
    def at(index: int, d: Any) -> Any:
        if index == len(interceptors):
            return lookup(d)
        return interceptors[index].intercept_service(lambda nd: at(index + 1, nd), d)
    return at(0, details)


async def intercept_service_async(interceptors: Tuple[Any, ...], lookup: Callable[[Any], Any],
                                  details: HandlerCallDetails) -> Any:
    """The asyncio pipeline (grpc.aio): each intercept_service is a coroutine, and so is the
    continuation it is given."""
    async def at(index: int, d: Any) -> Any:
        if index == len(interceptors):
            return lookup(d)

        async def continuation(nd: Any) -> Any:
            return await at(index + 1, nd)
        return await interceptors[index].intercept_service(continuation, d)
    return await at(0, details)


# --------------------------------------------------------------------------------------------
# Client side

class ClientCallDetails(abc.ABC):
    """What a client interceptor sees of a call and may replace: ``method``, ``timeout``,
    ``metadata``, ``credentials``, ``wait_for_ready``, ``compression``."""


class _ClientCallDetails(
        collections.namedtuple("_ClientCallDetails", ("method", "timeout", "metadata", "credentials",
                                                      "wait_for_ready", "compression")),
        ClientCallDetails):
    pass


class UnaryUnaryClientInterceptor(abc.ABC):
    @abc.abstractmethod
    def intercept_unary_unary(self, continuation: Callable[[Any, Any], Any],
                              client_call_details: ClientCallDetails, request: Any) -> Any:
        """Returns a Call that is also a Future (``continuation(details, request)`` returns one)."""
        raise NotImplementedError()


class UnaryStreamClientInterceptor(abc.ABC):
    @abc.abstractmethod
    def intercept_unary_stream(self, continuation: Callable[[Any, Any], Any],
                               client_call_details: ClientCallDetails, request: Any) -> Any:
        """Returns a Call that is also an iterator of responses."""
        raise NotImplementedError()


class StreamUnaryClientInterceptor(abc.ABC):
    @abc.abstractmethod
    def intercept_stream_unary(self, continuation: Callable[[Any, Any], Any],
                               client_call_details: ClientCallDetails, request_iterator: Any) -> Any:
        raise NotImplementedError()


class StreamStreamClientInterceptor(abc.ABC):
    @abc.abstractmethod
    def intercept_stream_stream(self, continuation: Callable[[Any, Any], Any],
                                client_call_details: ClientCallDetails, request_iterator: Any) -> Any:
        raise NotImplementedError()


_HOOKS = ("intercept_unary_unary", "intercept_unary_stream", "intercept_stream_unary",
          "intercept_stream_stream")


def _details(details: Any, defaults: _ClientCallDetails) -> _ClientCallDetails:
    """The details an interceptor passed on, with what it left out taken from the call's own
    (grpcio's _unwrap_client_call_details)."""
    return _ClientCallDetails(*(getattr(details, f, d) for f, d in zip(_ClientCallDetails._fields,
                                                                       defaults)))


class _Outcome:
    """A finished unary-response call handed to an interceptor: Call and Future at once
    (grpcio's _UnaryOutcome)."""

    def __init__(self, response: Any, call: Any) -> None:
        self._response = response
        self._call = call

    def initial_metadata(self) -> Any:
        return self._call.initial_metadata()

    def trailing_metadata(self) -> Any:
        return self._call.trailing_metadata()

    def code(self) -> Any:
        return self._call.code()

    def details(self) -> Any:
        return self._call.details()

    def is_active(self) -> bool:
        return self._call.is_active()

    def time_remaining(self) -> Any:
        return self._call.time_remaining()

    def cancel(self) -> bool:
        return self._call.cancel()

    def add_callback(self, callback: Callable[[], Any]) -> Any:
        return self._call.add_callback(callback)

    # a finished call's, as RpcError's: cancelled, running and done; add_done_callback
    cancelled = RpcError.cancelled
    running = RpcError.running
    done = RpcError.done
    add_done_callback = RpcError.add_done_callback

    def result(self, timeout: Optional[float] = None) -> Any:
        return self._response

    def exception(self, timeout: Optional[float] = None) -> None:
        return None

    def traceback(self, timeout: Optional[float] = None) -> None:
        return None


class _Failure(RpcError):
    """An interceptor (or the continuation) raised something other than an RpcError: a
    failed Call and Future and iterator that raises it (grpcio's _FailureOutcome)."""

    def __init__(self, exception: BaseException, traceback: Any) -> None:
        Exception.__init__(self, str(exception))
        self._exception = exception
        self._traceback = traceback

    def initial_metadata(self) -> Any:
        return None

    def trailing_metadata(self) -> Any:
        return None

    def code(self) -> Any:
        return StatusCode.INTERNAL

    def details(self) -> str:
        return "Exception raised while intercepting the RPC"

    # is_active, cancel, done, add_done_callback...: RpcError's, of a finished call
    def result(self, timeout: Optional[float] = None) -> Any:
        raise self._exception

    def exception(self, timeout: Optional[float] = None) -> BaseException:
        return self._exception

    def traceback(self, timeout: Optional[float] = None) -> Any:
        return self._traceback

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        raise self._exception

    next = __next__




def _failure(e: BaseException) -> Any:
    return _Failure(e, sys.exc_info()[2])


class _InterceptedMultiCallable:
    """One method of an intercepted channel: the interceptor runs on every call, with a
    continuation that calls the next channel down (another interceptor, or the real one)."""

    def __init__(self, thunk: Callable[[str], Any], method: str, interceptor: Any,
                 hook: str) -> None:
        self._thunk = thunk  # method -> the next channel's multicallable
        self._method = method
        self._interceptor = interceptor
        self._hook = getattr(interceptor, hook)
        self._unary_response = hook in ("intercept_unary_unary", "intercept_stream_unary")

    def _defaults(self, timeout: Any, metadata: Any, credentials: Any, wait_for_ready: Any,
                  compression: Any) -> _ClientCallDetails:
        return _ClientCallDetails(self._method, timeout, metadata, credentials, wait_for_ready,
                                  compression)

    @staticmethod
    def _kwargs(d: _ClientCallDetails) -> dict:
        return dict(timeout=d.timeout, metadata=d.metadata, credentials=d.credentials,
                    wait_for_ready=d.wait_for_ready, compression=d.compression)

    def _with_call(self, request: Any, timeout: Any = None, metadata: Any = None,
                   credentials: Any = None, wait_for_ready: Any = None,
                   compression: Any = None) -> Tuple[Any, Any]:
        defaults = self._defaults(timeout, metadata, credentials, wait_for_ready, compression)

        def continuation(new_details: Any, new_request: Any) -> Any:
            d = _details(new_details, defaults)
            try:
                response, call = self._thunk(d.method).with_call(new_request, **self._kwargs(d))
                return _Outcome(response, call)
            except Exception as e:  # an RpcError is itself a finished Call and Future
                return e if hasattr(e, "code") and hasattr(e, "result") else _failure(e)

        call = self._hook(continuation, defaults, request)
        return call.result(), call

    def __call__(self, request: Any, timeout: Any = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: Any = None, compression: Any = None) -> Any:
        if self._unary_response:
            return self._with_call(request, timeout, metadata, credentials, wait_for_ready,
                                   compression)[0]
        return self._start(request, "__call__", timeout, metadata, credentials, wait_for_ready,
                           compression)

    def with_call(self, request: Any, timeout: Any = None, metadata: Any = None,
                  credentials: Any = None, wait_for_ready: Any = None, compression: Any = None) -> Any:
        return self._with_call(request, timeout, metadata, credentials, wait_for_ready, compression)

    def future(self, request: Any, timeout: Any = None, metadata: Any = None,
               credentials: Any = None, wait_for_ready: Any = None, compression: Any = None) -> Any:
        return self._start(request, "future", timeout, metadata, credentials, wait_for_ready,
                           compression)

    def _start(self, request: Any, how: str, timeout: Any, metadata: Any, credentials: Any,
               wait_for_ready: Any, compression: Any) -> Any:
        """A call whose outcome comes later (a future, or a response iterator): the
        continuation starts it on the next channel down the same way."""
        defaults = self._defaults(timeout, metadata, credentials, wait_for_ready, compression)

        def continuation(new_details: Any, new_request: Any) -> Any:
            d = _details(new_details, defaults)
            mc = self._thunk(d.method)
            return getattr(mc, how)(new_request, **self._kwargs(d))

        try:
            return self._hook(continuation, defaults, request)
        except Exception as e:
            return _failure(e)


class _InterceptedChannel:
    """grpcio's intercepted channel: each method's calls go through `interceptor` when it
    intercepts that kind, straight to `channel` otherwise."""

    def __init__(self, channel: Any, interceptor: Any) -> None:
        self._channel = channel
        self._interceptor = interceptor

    def _method(self, kind: str, method: str, request_serializer: Any, response_deserializer: Any,
                **kw: Any) -> Any:
        factory = getattr(self._channel, kind)

        def thunk(m: str) -> Any:
            return factory(m, request_serializer, response_deserializer, **kw)
        hook = "intercept_" + kind
        if callable(getattr(self._interceptor, hook, None)):
            return _InterceptedMultiCallable(thunk, method, self._interceptor, hook)
        return thunk(method)

    def unary_unary(self, method: str, request_serializer: Any = None,
                    response_deserializer: Any = None, **kw: Any) -> Any:
        return self._method("unary_unary", method, request_serializer, response_deserializer, **kw)

    def unary_stream(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, **kw: Any) -> Any:
        return self._method("unary_stream", method, request_serializer, response_deserializer, **kw)

    def stream_unary(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, **kw: Any) -> Any:
        return self._method("stream_unary", method, request_serializer, response_deserializer, **kw)

    def stream_stream(self, method: str, request_serializer: Any = None,
                      response_deserializer: Any = None, **kw: Any) -> Any:
        return self._method("stream_stream", method, request_serializer, response_deserializer, **kw)

    def subscribe(self, callback: Callable[[Any], Any], try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[[Any], Any]) -> None:
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "_InterceptedChannel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._channel.close()

    def __getattr__(self, name: str) -> Any:  # get_state and the other swiftgrpc extras
        return getattr(self._channel, name)


def intercept_channel(channel: Any, *interceptors: Any) -> Any:
    """grpcio's ``grpc.intercept_channel``: a channel whose calls go through `interceptors`,
    the first one outermost."""
    for interceptor in reversed(interceptors):
        if not any(callable(getattr(interceptor, h, None)) for h in _HOOKS):
            raise TypeError("interceptor must be a UnaryUnaryClientInterceptor, "
                            "UnaryStreamClientInterceptor, StreamUnaryClientInterceptor or "
                            f"StreamStreamClientInterceptor, got {type(interceptor).__name__}")
        channel = _InterceptedChannel(channel, interceptor)
    return channel
