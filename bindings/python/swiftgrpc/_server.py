"""The synchronous server: grpcio's ``grpc.Server`` API on libswiftgrpc.

Events of every method go to one pull queue. Python worker threads take them and run handlers
inline (no hand-off between threads on the hot path). At most two threads wait on the queue at
a time (more would fight over the GIL); when a handler runs long and nobody is left waiting,
a parked or new worker takes over, up to ``max_workers`` handlers at once — grpcio's thread-pool
limit. Calls beyond that wait in a backlog, while one thread keeps routing request messages and
cancellations, so ``is_active()`` and ``add_callback`` always learn of a cancelled call.
"""
from __future__ import annotations

import collections
import ctypes
import itertools
import logging
import queue
import threading
import weakref
from typing import (Any, Callable, Dict, Iterable, List, NamedTuple, Optional,
                    Sequence, Tuple)

from . import _native as N
from . import _options
from ._credentials import ServerCredentials, auth_context, peer_identities, peer_identity_key
from ._common import (FORKED_MESSAGE, AbortError, Batches, Event, Metadatum, RawMetadata, RawPairs, StatusCode, UsageError, as_bytes,
                      build_metadata, code_int, compression_algorithm, raise_native,
                      runtime, status_code, with_compression_option)

from ._interceptors import NOT_FOUND, PIPELINE_FAILED, check_server_interceptors, intercept_service
from ._interceptors import _HandlerCallDetails as HandlerCallDetails_

_LOG = logging.getLogger("swiftgrpc")

_complete = N.swiftgrpc_host_complete
_send_message = N.swiftgrpc_call_send_message
_send_v2 = N.swiftgrpc_call_send_message_v2


def send_response(handle: int, ctx: Any, body: bytes) -> int:
    """Sends one response message of the call of `ctx`; uncompressed if the handler asked
    (disable_next_message_compression)."""
    if ctx._plain_next:
        ctx._plain_next = False
        return _send_v2(handle, ctx._token, body, len(body), N.WRITE_NO_COMPRESS)
    return _send_message(handle, ctx._token, body, len(body))
_set_tag = N.swiftgrpc_call_set_tag
_WORKER_NAME = "swiftgrpc-server-worker"
_BATCH = 32  # events taken per wake-up by a worker
# Response messages a streaming handler may have in flight (of SWIFTGRPC_MAX_OUTSTANDING_SENDS).
_SEND_WINDOW = 8
_call_read = N.swiftgrpc_call_read


# --------------------------------------------------------------------------------------------
# Method handlers (grpcio's shapes, so generated add_*Servicer_to_server code works)

class RpcMethodHandler(NamedTuple):
    """How to serve one method; the fields of ``grpc.RpcMethodHandler``."""
    request_streaming: bool
    response_streaming: bool
    request_deserializer: Optional[Callable[[bytes], Any]]
    response_serializer: Optional[Callable[[Any], bytes]]
    unary_unary: Optional[Callable[..., Any]]
    unary_stream: Optional[Callable[..., Any]]
    stream_unary: Optional[Callable[..., Any]]
    stream_stream: Optional[Callable[..., Any]]


def unary_unary_rpc_method_handler(behavior, request_deserializer=None, response_serializer=None):
    return RpcMethodHandler(False, False, request_deserializer, response_serializer,
                            behavior, None, None, None)


def unary_stream_rpc_method_handler(behavior, request_deserializer=None, response_serializer=None):
    return RpcMethodHandler(False, True, request_deserializer, response_serializer,
                            None, behavior, None, None)


def stream_unary_rpc_method_handler(behavior, request_deserializer=None, response_serializer=None):
    return RpcMethodHandler(True, False, request_deserializer, response_serializer,
                            None, None, behavior, None)


def stream_stream_rpc_method_handler(behavior, request_deserializer=None, response_serializer=None):
    return RpcMethodHandler(True, True, request_deserializer, response_serializer,
                            None, None, None, behavior)


class GenericRpcHandler:
    """A service's methods by full name ("/pkg.Service/Method")."""

    def __init__(self, service: str, method_handlers: Dict[str, Any]) -> None:
        self._name = service
        self._method_handlers = {f"/{service}/{m}": h for m, h in method_handlers.items()}

    def service_name(self) -> str:
        return self._name

    def service(self, handler_call_details: Any) -> Any:
        return self._method_handlers.get(handler_call_details.method)


def method_handlers_generic_handler(service: str, method_handlers: Dict[str, Any]):
    return GenericRpcHandler(service, method_handlers)


def kind_of(handler: Any) -> int:
    if handler.request_streaming:
        return N.KIND_BIDI_STREAMING if handler.response_streaming else N.KIND_CLIENT_STREAMING
    return N.KIND_SERVER_STREAMING if handler.response_streaming else N.KIND_UNARY


def methods_of(generic_handler: Any) -> Dict[str, Any]:
    """The {full method name: handler} of a generic handler made by
    method_handlers_generic_handler (ours or grpcio's)."""
    table = getattr(generic_handler, "_method_handlers", None)
    if not isinstance(table, dict):
        raise TypeError(
            f"{type(generic_handler).__name__} does not list its methods: swiftgrpc registers "
            "every method when the server starts, so give handlers made by "
            "method_handlers_generic_handler() or use add_registered_method_handlers()")
    return dict(table)


# --------------------------------------------------------------------------------------------
# Status of a handler's outcome

# What a handler's exception ends its call with, as grpcio words it: UNKNOWN unless the handler
# set a code first; sync servers keep details the handler set, asyncio ones do not.
CALLING = "Exception calling application: {e}"          # the handler raised (sync)
ITERATING = "Exception iterating responses: {e}"        # its response iterator raised (sync)
UNEXPECTED = "Unexpected {cls}: {e}"                    # an asyncio handler raised


def status_for_exception(e: BaseException, template: str = CALLING) -> Tuple[int, str]:
    """The status grpcio ends a call with when its handler raises `e` and set no code:
    UNKNOWN, with `template` filled in (CALLING, ITERATING or UNEXPECTED)."""
    try:
        details = template.format(e=e, cls=type(e))
    except Exception:  # an exception whose __str__ raises
        details = "Calling application raised unprintable Exception!"
    return StatusCode.UNKNOWN.value[0], details


_INTERNAL = StatusCode.INTERNAL.value[0]


def unary_outcome(ctx: Any, response: Any, ser: Any) -> Tuple[Optional[bytes], int, Optional[str]]:
    """(response bytes, status code, details) once a unary-response handler returned: the code
    the handler set wins; else the serialized response with OK."""
    code = 0 if ctx._code is None else ctx._code
    if code != 0:
        return None, code, ctx._details
    try:
        return (ser(response) if ser is not None else as_bytes(response, "response")), 0, ctx._details
    except Exception as e:
        return None, _INTERNAL, f"Failed to serialize response: {e}"


def failure_outcome(ctx: Any, e: BaseException, template: str = CALLING,
                    keep_details: bool = True) -> Tuple[int, Optional[str]]:
    """(status code, details) for a handler that raised, as grpcio answers: the code the handler
    set wins over UNKNOWN; so do its details if `keep_details` (sync servers). The exception is
    logged with its traceback, as grpcio logs it."""
    code, details = status_for_exception(e, template)
    _LOG.error("swiftgrpc: %s (in the handler of %s)", details, ctx._method, exc_info=e)
    if ctx._code not in (None, 0):
        code = ctx._code
    if keep_details and ctx._details is not None:
        details = ctx._details
    return code, details


def decode_request(handler: Any, message: bytes) -> Any:
    """The request of a unary-request call; raises _BadRequest if it does not deserialize."""
    d = handler.request_deserializer
    try:
        return d(message) if d is not None else message
    except Exception as e:
        raise _BadRequest(f"Exception deserializing request: {e}") from None


class _BadRequest(Exception):
    pass


_NO_REQUEST = object()


class _Abort(AbortError):
    """Raised by ServicerContext.abort to unwind the handler."""


class _Cancelled(Exception):
    """Raised inside a handler reading requests of a call that has ended."""


def encode_details(details: Optional[str]) -> Optional[bytes]:
    if not details:
        return None
    if not isinstance(details, str):
        details = str(details)
    # The ABI takes a C string: a NUL cannot travel; it becomes U+FFFD.
    return details.replace("\0", "\ufffd").encode("utf-8", "replace")


class ContextBase:
    """What the sync and asyncio servicer contexts share: the call's facts and the status the
    handler chooses."""

    __slots__ = ()
    _metadata: Any  # RawMetadata until first asked for, then the Metadatum tuple
    _auth: Any  # RawPairs until first asked for, then the (name, value) pairs
    _peer: str
    _deadline_ns: int
    _code: Optional[int]
    _details: Optional[str]
    _trailing: Any

    def invocation_metadata(self) -> Tuple[Metadatum, ...]:
        md = self._metadata
        if isinstance(md, RawMetadata):
            md = self._metadata = md.decode()
        return md

    def auth_context(self) -> Dict[str, List[bytes]]:
        """The connection's auth properties, as grpcio gives them: name -> values (bytes);
        "transport_security_type" is [b"ssl"] on TLS, and a verified client certificate adds
        "x509_common_name", "x509_subject_alternative_name", "x509_pem_cert", ..."""
        return auth_context(self._auth_pairs())

    def _auth_pairs(self) -> Tuple[Tuple[str, bytes], ...]:
        a = self._auth
        if isinstance(a, RawPairs):
            a = self._auth = a.decode()
        return a

    def peer_identities(self) -> Optional[List[bytes]]:
        """The client's identities from its certificate (its SANs, else its common name);
        None unless it sent a verified certificate."""
        return peer_identities(self._auth_pairs())

    def peer_identity_key(self) -> Optional[str]:
        """The auth property peer_identities() come from; None if the peer is not
        authenticated."""
        return peer_identity_key(self._auth_pairs())

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float:
        """Seconds left before the deadline; infinity when the client set none (grpcio
        returns a huge number there; infinity compares the same way)."""
        if self._deadline_ns >= N.DEADLINE_NONE:
            return float("inf")
        return max(0.0, (self._deadline_ns - N.now_ns()) / 1e9)

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        build_metadata(trailing_metadata, "trailing metadata")  # type errors now, not later
        self._trailing = trailing_metadata

    def trailing_metadata(self) -> Any:
        return self._trailing

    def set_code(self, code: Any) -> None:
        self._code = code_int(code)

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> Optional[StatusCode]:
        return None if self._code is None else status_code(self._code)

    def details(self) -> Optional[str]:
        return self._details

    def _server_handle(self) -> int:
        raise NotImplementedError

    def set_compression(self, compression: Any) -> None:
        """Compresses this call's responses so (grpc.Compression), if the client accepts it
        (else they go uncompressed). Before the first response message or initial metadata."""
        alg = compression_algorithm(compression, "context.set_compression")
        rc = N.swiftgrpc_call_set_compression(self._server_handle(), self._token,
                                              N.COMPRESS_NONE if alg is None else alg)
        if rc == N.E_WRONG_STATE:
            raise ValueError("context.set_compression: the response headers were already sent; set "
                             "compression before the first response message or initial metadata")
        # Other errors: the call is over, nothing more goes out.

    def disable_next_message_compression(self) -> None:
        """The next response message goes uncompressed, whatever the call's compression."""
        self._plain_next = True

    def request_compressed(self) -> bool:
        """Whether the request message the handler got last (a unary request, or the one its
        request iterator or read() returned last) came compressed from the client. A swiftgrpc
        extension (grpcio has none): what gRPC's CompressedRequest interop check needs."""
        return self._req_compressed


class ServicerContext(ContextBase):
    """The context handed to a handler; grpcio's ``grpc.ServicerContext``."""

    __slots__ = ("_state", "_token", "_method", "_peer", "_metadata", "_auth", "_deadline_ns", "_active",
                 "_done", "_callbacks", "_code", "_details", "_trailing", "_inbox", "_sent",
                 "_initial_sent", "_tag", "_plain_next", "_req_compressed", "__weakref__")

    def __init__(self, state: "_ServerState", ev: Event) -> None:
        self._state = state
        self._token = ev.token
        self._method = ev.method
        self._peer = ev.peer
        self._metadata = ev.metadata
        self._auth = ev.auth
        self._deadline_ns = ev.deadline_ns
        self._active = True
        self._done = False
        self._callbacks: Optional[List[Callable[[], Any]]] = None
        self._code: Optional[int] = None
        self._details: Optional[str] = None
        self._trailing: Any = None
        self._inbox: Any = None  # MESSAGE / HALF_CLOSE events (None: cancelled)
        self._sent: Any = None  # SEND_DONE events (None: cancelled)
        self._initial_sent = False
        self._plain_next = False  # disable_next_message_compression
        self._req_compressed = ev.compressed
        self._tag = 0  # the call's host tag: its key in _ServerState.calls

    def _server_handle(self) -> int:
        return self._state.handle

    # -- what the call is
    def method(self) -> str:
        return self._method

    def is_active(self) -> bool:
        if self._active and self._deadline_ns < N.DEADLINE_NONE and N.now_ns() >= self._deadline_ns:
            return False
        return self._active

    def add_callback(self, callback: Callable[[], Any]) -> bool:
        """Runs `callback` once when the call ends (completed or cancelled). False if it has."""
        with self._state.lock:  # against _terminated on the worker that takes the CANCELLED
            if self._done:
                return False
            if self._callbacks is None:
                self._callbacks = []
            self._callbacks.append(callback)
        return True

    def cancel(self) -> None:
        """Ends the call with CANCELLED."""
        self._state.finish(self, None, StatusCode.CANCELLED.value[0], "Cancelled by the server")

    # -- what the response carries
    def send_initial_metadata(self, initial_metadata: Any) -> None:
        if self._initial_sent:
            raise ValueError("initial metadata was already sent")
        arr, n = build_metadata(initial_metadata, "initial metadata")
        rc = N.swiftgrpc_call_send_initial_metadata(self._state.handle, self._token, arr, n)
        if rc == N.E_INVALID_METADATA:
            raise ValueError(N.last_error())
        self._initial_sent = True

    def abort(self, code: Any, details: str = "") -> None:
        c = code_int(code)
        if c == 0:
            raise ValueError("abort() needs a non-OK status code")
        self._code = c
        self._details = details
        raise _Abort()

    def abort_with_status(self, status: Any) -> None:
        if getattr(status, "trailing_metadata", None):
            self._trailing = status.trailing_metadata
        self.abort(status.code, status.details)

    # -- library side
    def _terminated(self) -> None:
        with self._state.lock:  # a callback added meanwhile is either run here or refused
            self._active = False
            self._done = True
            cbs, self._callbacks = self._callbacks, None
        if cbs:
            for cb in cbs:
                try:
                    cb()
                except Exception:
                    _LOG.exception("swiftgrpc: a callback of %s raised", self._method)


class _RequestIterator:
    """The request stream of a client-streaming or bidi call: reads one message at a time."""

    def __init__(self, state: "_ServerState", ctx: ServicerContext, deserializer: Any) -> None:
        self._state = state
        self._ctx = ctx
        self._deserializer = deserializer
        self._ended = False
        ctx._inbox = queue.SimpleQueue()

    def __iter__(self) -> "_RequestIterator":
        return self

    def __next__(self) -> Any:
        if self._ended:
            raise StopIteration
        ctx = self._ctx
        if not ctx._active:
            raise _Cancelled()
        rc = _call_read(self._state.handle, ctx._token)
        if rc < 0:
            self._ended = True
            raise _Cancelled()
        ev = ctx._inbox.get()
        if ev is None:  # cancelled
            self._ended = True
            raise _Cancelled()
        if ev.type == N.EVENT_HALF_CLOSE:
            self._ended = True
            raise StopIteration
        ctx._req_compressed = ev.compressed
        d = self._deserializer
        return d(ev.message) if d is not None else ev.message

    next = __next__


# --------------------------------------------------------------------------------------------
# Serving

_OPTION_MAP = {
    "grpc.max_receive_message_length": N.OPT_MAX_RECV_MESSAGE_SIZE,
    "grpc.max_send_message_length": N.OPT_MAX_SEND_MESSAGE_SIZE,
    "grpc.max_concurrent_streams": N.OPT_MAX_CONCURRENT_STREAMS,
    "grpc.max_metadata_size": N.OPT_MAX_METADATA_SIZE,
    "grpc.absolute_max_metadata_size": N.OPT_MAX_METADATA_SIZE,
    "grpc.server_handshake_timeout_ms": N.OPT_HANDSHAKE_TIMEOUT_MS,
    "swiftgrpc.max_control_frames_per_second": N.OPT_MAX_CONTROL_FRAMES_PER_SECOND,
    "grpc.default_compression_algorithm": N.OPT_DEFAULT_COMPRESSION,
    "grpc.keepalive_time_ms": N.OPT_KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": N.OPT_KEEPALIVE_TIMEOUT_MS,
    "grpc.keepalive_permit_without_calls": N.OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS,
    "grpc.http2.min_ping_interval_without_data_ms": N.OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS,
    "grpc.http2.max_ping_strikes": N.OPT_MAX_PING_STRIKES,
    "grpc.max_connection_idle_ms": N.OPT_MAX_CONNECTION_IDLE_MS,
    "grpc.max_connection_age_ms": N.OPT_MAX_CONNECTION_AGE_MS,
    "grpc.max_connection_age_grace_ms": N.OPT_MAX_CONNECTION_AGE_GRACE_MS,
    "grpc.so_reuseport": N.OPT_SO_REUSEPORT,
}
# grpcio's "infinite" for these: INT_MAX milliseconds; swiftgrpc's is 0 (off).
_INT_MAX_IS_OFF = {N.OPT_KEEPALIVE_TIME_MS, N.OPT_MAX_CONNECTION_IDLE_MS, N.OPT_MAX_CONNECTION_AGE_MS,
                   N.OPT_MAX_CONNECTION_AGE_GRACE_MS}


class NativeServer:
    """The library server under both the sync and the asyncio Server: the handle, options, the
    method table, listening ports, starting on one event queue, completing a call."""

    def __init__(self, options: Optional[Sequence[Tuple[str, Any]]],
                 maximum_concurrent_rpcs: Optional[int] = None) -> None:
        if maximum_concurrent_rpcs is not None:
            if (not isinstance(maximum_concurrent_rpcs, int) or isinstance(maximum_concurrent_rpcs, bool)
                    or not 1 <= maximum_concurrent_rpcs < (1 << 31)):
                raise ValueError(f"maximum_concurrent_rpcs must be an int from 1 to 2**31 - 1 or None, "
                                 f"not {maximum_concurrent_rpcs!r}")
        self.rt = runtime()
        h = N.H()
        N.check(N.swiftgrpc_server_create(self.rt.handle, ctypes.byref(h)), "swiftgrpc_server_create")
        self.handle = h.value
        self.methods: Dict[str, Any] = {}
        self.health = False  # the built-in health service is enabled
        self.started = False
        self.credentials: List[ServerCredentials] = []
        _options.check(options, tuple(_OPTION_MAP), "a server", _options.CHANNEL_ONLY)
        for key, value in options or ():
            opt = _OPTION_MAP.get(key)
            if opt == N.OPT_DEFAULT_COMPRESSION:
                value = compression_algorithm(value, key) or 0
            elif opt in _INT_MAX_IS_OFF and int(value) >= (1 << 31) - 1:
                value = 0
            if opt is not None:
                try:
                    N.check(N.swiftgrpc_server_set_option(self.handle, opt, int(value)),
                            "swiftgrpc_server_set_option")
                except N.NativeError as e:
                    raise_native(e)
        if maximum_concurrent_rpcs is not None:  # answered RESOURCE_EXHAUSTED by the library
            N.check(N.swiftgrpc_server_set_option(self.handle, N.OPT_MAX_CONCURRENT_CALLS,
                                                  maximum_concurrent_rpcs), "swiftgrpc_server_set_option")

    def add(self, name: str, handler: Any) -> None:
        if self.started:
            raise UsageError("methods must be added before start()")
        if name in self.methods:
            raise ValueError(f"method {name} is already registered")
        if self.health and name.startswith("/grpc.health.v1.Health/"):
            raise UsageError(f"method {name} is served by the built-in health service")
        for field in ("request_streaming", "response_streaming"):
            if not hasattr(handler, field):
                raise TypeError(f"handler for {name} is not an RpcMethodHandler")
        self.methods[name] = handler

    def listen(self, address: str, credentials: Optional[ServerCredentials] = None) -> int:
        if not isinstance(address, str):
            raise TypeError(f"address must be str, got {type(address).__name__}")
        if credentials is not None and not isinstance(credentials, ServerCredentials):
            raise TypeError(f"server_credentials must be ServerCredentials (ssl_server_credentials()), "
                            f"got {type(credentials).__name__}")
        if self.started:
            raise UsageError("ports must be added before start()")
        if address.startswith("unix://"):
            address = "unix:" + address[len("unix://"):]
        port = ctypes.c_int()
        try:
            if credentials is None:
                N.check(N.swiftgrpc_server_listen(self.handle, address.encode(), ctypes.byref(port)),
                        "swiftgrpc_server_listen")
            else:
                N.check(N.swiftgrpc_server_listen_secure(self.handle, address.encode(), credentials._handle,
                                                         ctypes.byref(port)),
                        "swiftgrpc_server_listen_secure")
                self.credentials.append(credentials)  # a fetcher stays alive with the server
        except N.NativeError as e:
            if e.code == N.E_SYSTEM:
                raise RuntimeError(f"cannot listen on {address}: {e.message}") from None
            raise_native(e)
        return port.value

    def start(self, queue: int) -> None:
        """Registers every method on `queue` and starts serving."""
        try:
            for name, handler in self.methods.items():
                N.check(N.swiftgrpc_register_host_queue(self.handle, name.encode(), kind_of(handler),
                                                        queue), "swiftgrpc_register_host_queue")
            N.check(N.swiftgrpc_server_start(self.handle), "swiftgrpc_server_start")
        except N.NativeError as e:
            raise_native(e)
        self.started = True

    def probe(self, method: str, request: bytes, iterations: int, timeout: Optional[float]) -> float:
        """swiftgrpc_server_probe: seconds per in-process round trip through the handler."""
        if not isinstance(method, str) or not isinstance(request, (bytes, bytearray)):
            raise TypeError("method must be str and request bytes")
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive int, got {iterations!r}")
        elapsed = ctypes.c_int64()
        ms = -1 if timeout is None else int(timeout * 1000)
        try:
            N.check(N.swiftgrpc_server_probe(self.handle, method.encode(), bytes(request), len(request),
                                             iterations, ms, ctypes.byref(elapsed)),
                    "swiftgrpc_server_probe")
        except N.NativeError as e:
            if e.code == N.E_TIMEOUT:
                raise TimeoutError(e.message) from None
            raise_native(e)
        return elapsed.value / 1e9 / iterations

    def complete(self, ctx: Any, message: Optional[bytes], code: int, details: Optional[str]) -> int:
        """swiftgrpc_host_complete for the call of `ctx` with its trailing metadata. Trailers the
        library refuses still give the client an answer: INTERNAL, without them."""
        arr, n = build_metadata(ctx._trailing, "trailing metadata") if ctx._trailing else (None, 0)
        if message is not None and ctx._plain_next:
            # An uncompressed last message: sent on its own, then the status (its SEND_DONE,
            # if one comes before the completion, finds no waiter).
            ctx._plain_next = False
            if _send_v2(self.handle, ctx._token, message, len(message), N.WRITE_NO_COMPRESS) == 0:
                message = None
        rc = _complete(self.handle, ctx._token, message, len(message) if message is not None else 0,
                       code, encode_details(details), arr, n)
        if rc == N.E_INVALID_METADATA:
            _LOG.error("swiftgrpc: %s: %s", ctx._method, N.last_error())
            rc = _complete(self.handle, ctx._token, None, 0, _INTERNAL,
                           b"invalid trailing metadata", None, 0)
        if rc < 0 and rc != N.E_TOKEN_CLOSED:  # E_TOKEN_CLOSED: cancelled first, not an error
            _LOG.error("swiftgrpc: completing %s failed: %s", ctx._method, N.last_error())
        return rc


class ServerAPI:
    """grpcio's registration and port methods, shared by the sync and asyncio servers."""

    _native: NativeServer

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[Any]) -> None:
        for g in generic_rpc_handlers:
            for name, h in methods_of(g).items():
                if name not in self._native.methods:  # generated code adds both ways
                    self._native.add(name, h)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Dict[str, Any]) -> None:
        for m, h in method_handlers.items():
            name = f"/{service_name}/{m}"
            if name not in self._native.methods:
                self._native.add(name, h)

    def add_method(self, name: str, handler: Any) -> None:
        """Native registration: `name` "/pkg.Service/Method", `handler` from one of the
        *_rpc_method_handler functions."""
        self._native.add(name, handler)

    def add_insecure_port(self, address: str) -> int:
        """Listens on `address` ("host:port", "[::]:port", "unix:path"); returns the port."""
        return self._native.listen(address)

    def add_secure_port(self, address: str, server_credentials: ServerCredentials) -> int:
        """Listens with TLS (ssl_server_credentials()) on `address`; returns the port."""
        if server_credentials is None:
            raise TypeError("server_credentials must be ServerCredentials (ssl_server_credentials())")
        return self._native.listen(address, server_credentials)

    def probe_host(self, method: str, request: bytes = b"", iterations: int = 1,
                   timeout: Optional[float] = None) -> float:
        """swiftgrpc's own: calls the handler of the unary `method` of this running server
        `iterations` times in process, without a connection, and returns the mean seconds per
        round trip (event to the handler, its answer, the library resuming the call). It measures
        the host boundary; the responses are discarded. Blocks; raises TimeoutError after
        `timeout` seconds, UsageError if the server is not running or the method not unary,
        ValueError for an unknown method."""
        return self._native.probe(method, request, iterations, timeout)


class _ServerState:
    """Everything the worker threads need; the Server object only points at it, so that a
    server dropped without stop() is collected and stopped."""

    def __init__(self, max_workers: int, options: Optional[Sequence[Tuple[str, Any]]],
                 maximum_concurrent_rpcs: Optional[int] = None) -> None:
        self.native = NativeServer(options, maximum_concurrent_rpcs)
        self.interceptors: Tuple[Any, ...] = ()  # ServerInterceptors, outermost first
        self.rt = self.native.rt
        self.handle = self.native.handle
        self.methods = self.native.methods
        self.queue = 0
        # The calls being served, by the host tag each is bound to (swiftgrpc_call_set_tag):
        # every later event of a call carries its tag, so any worker finds the call.
        self.calls: Dict[int, ServicerContext] = {}
        self.tags = itertools.count(1)
        self.max_workers = max(1, max_workers)
        self.lock = threading.Lock()
        self.listening = 0
        self.threads = 0
        self.parked = 0
        self.wake = threading.Semaphore(0)
        self.backlog: "collections.deque[Event]" = collections.deque()
        self.helping = False  # a worker woken (or started) for the backlog has not looked yet
        self.listen_wakes = 0  # parked workers woken to listen (counted as listening already)
        self.started = False
        self.stop_begun = False
        self.stopping = False
        self.stopped = threading.Event()
        self.forked = False  # the parent's, in a forked child

    # -- answering
    def finish(self, ctx: ServicerContext, message: Optional[bytes], code: int,
               details: Optional[str]) -> None:
        if ctx._done:
            return
        if self.native.complete(ctx, message, code, details) == 0:
            self.calls.pop(ctx._tag, None)
            ctx._terminated()
        else:  # cancelled first (the CANCELLED event does the rest) or refused
            ctx._done = True

    def _lookup(self, details: Any) -> Any:
        return self.methods.get(details.method)

    def run_call(self, ev: Event) -> None:
        ctx = ServicerContext(self, ev)
        token = ev.token
        ctx._tag = tag = next(self.tags)
        self.calls[tag] = ctx
        if _set_tag(self.handle, token, tag) < 0:  # ended before it was bound: cancelled
            del self.calls[tag]
            ctx._terminated()
            return
        if self.interceptors:
            try:
                handler = intercept_service(self.interceptors, self._lookup, HandlerCallDetails_(
                    ev.method, ctx.invocation_metadata()))
            except Exception as e:
                _LOG.error("swiftgrpc: Exception servicing handler: %s", e, exc_info=e)
                self.finish(ctx, None, *PIPELINE_FAILED)
                return
        else:
            handler = self.methods.get(ev.method)
        if handler is None:  # no handler: an interceptor chose none (or, defensive, unknown)
            self.finish(ctx, None, *NOT_FOUND)
            return
        ser = handler.response_serializer
        template = CALLING
        try:
            streamed = ev.kind >= N.KIND_CLIENT_STREAMING  # as registered
            if handler.request_streaming:
                request: Any = (_RequestIterator(self, ctx, handler.request_deserializer) if streamed
                                else iter((decode_request(handler, ev.message),)))
            elif streamed:  # an interceptor's unary-request handler for a streaming method
                request = next(_RequestIterator(self, ctx, handler.request_deserializer), _NO_REQUEST)
                if request is _NO_REQUEST:
                    raise _BadRequest("Exactly one request required for unary call!")
            else:
                request = decode_request(handler, ev.message)
            if not handler.response_streaming:
                behavior = handler.unary_unary if not handler.request_streaming else handler.stream_unary
                self.finish(ctx, *unary_outcome(ctx, behavior(request, ctx), ser))
            else:
                behavior = handler.unary_stream if not handler.request_streaming else handler.stream_stream
                responses = behavior(request, ctx)
                if responses is not None:
                    handle = self.handle
                    # _SEND_WINDOW messages in flight at most, the next once the library says
                    # one left (SEND_DONE): the generator is pulled only as fast as the client
                    # reads, a few messages ahead, without a round trip per message.
                    sent = ctx._sent = queue.SimpleQueue()
                    in_flight = 0
                    ended = False
                    template = ITERATING
                    for item in responses:
                        if ctx._done:
                            break
                        body = ser(item) if ser is not None else as_bytes(item, "response")
                        rc = send_response(handle, ctx, body)
                        if rc == N.E_TOO_LARGE:
                            self.finish(ctx, None, StatusCode.RESOURCE_EXHAUSTED.value[0],
                                        N.last_error())
                            return
                        if rc < 0:
                            break  # the call ended (cancelled, deadline): nobody to send to
                        in_flight += 1
                        if in_flight == _SEND_WINDOW:
                            if sent.get() is None:
                                ended = True
                                break
                            in_flight -= 1
                    while in_flight and not ended and not ctx._done:  # the last ones leave first
                        ended = sent.get() is None
                        in_flight -= 1
                code = 0 if ctx._code is None else ctx._code
                self.finish(ctx, None, code, ctx._details)
        except _Abort:
            self.finish(ctx, None, ctx._code or StatusCode.UNKNOWN.value[0], ctx._details)
        except _BadRequest as e:
            self.finish(ctx, None, _INTERNAL, str(e))
        except _Cancelled:
            ctx._done = True
        except Exception as e:
            if not ctx._done:
                self.finish(ctx, None, *failure_outcome(ctx, e, template))

    def route(self, ev: Event) -> None:
        """A MESSAGE, HALF_CLOSE, SEND_DONE or CANCELLED event: to the call whose tag it carries.
        An event without one is the CANCELLED of a call that ended before run_call bound it
        (run_call saw that and ended it)."""
        ctx = self.calls.get(ev.tag) if ev.tag else None
        if ctx is None:
            return
        if ev.type == N.EVENT_CANCELLED:
            self.calls.pop(ev.tag, None)
            for box in (ctx._inbox, ctx._sent):
                if box is not None:
                    box.put(None)
            ctx._terminated()
        else:
            box = ctx._sent if ev.type == N.EVENT_SEND_DONE else ctx._inbox
            if box is not None:
                box.put(ev)

    # -- the workers
    @staticmethod
    def _guarded(step: Callable[[Event], None], ev: Event) -> None:
        """Runs one dispatch step; nothing it raises may end the worker thread."""
        try:
            step(ev)
        except Exception:
            _LOG.exception("swiftgrpc: dispatching an event of %s failed", getattr(ev, "method", "?"))

    def spawn(self, helper: bool = False) -> None:
        t = threading.Thread(target=self.work, args=(helper,), name=_WORKER_NAME, daemon=True)
        t.start()

    def work(self, helper: bool = False) -> None:
        """One worker (`helper`: started for the backlog, it looks there first): takes a batch of events (one wake-up for many), routes the ones of calls
        already running, and runs the new calls' handlers. Leader/follower: a worker runs a
        handler only while another one listens on the queue (there is always a listener to
        route messages and cancellations); the calls of a batch beyond the first wait in the
        backlog, with a parked (or new) worker woken for them, so a slow handler does not hold
        the rest of its batch while workers are free. `listening` counts the workers waiting on
        the queue or on their way there (counted by the one that sent them)."""
        batches = Batches(self.queue, _BATCH)
        lock = self.lock
        backlog = self.backlog
        route = self.route
        try:
            if helper and self._drain(True):
                return
            while True:
                evs = batches.next(-1)
                if isinstance(evs, int):
                    if evs == N.E_TIMEOUT:
                        continue  # (still counted as listening)
                    with lock:
                        self.listening -= 1
                    return
                calls = None
                for ev in evs:
                    t = ev.type
                    if t == N.EVENT_CALL:
                        if calls is None:
                            calls = [ev]
                        else:
                            calls.append(ev)
                    elif t == N.EVENT_SERVER_SHUTDOWN:
                        self.shutdown_done()
                    else:
                        self._guarded(route, ev)
                if calls is None:
                    continue  # routing is quick: back to the queue, still counted
                spawn_listener = spawn_helper = False
                with lock:
                    self.listening -= 1
                    if self.listening == 0:  # nobody else waits on the queue: get someone
                        if self.parked:
                            self.parked -= 1
                            self.listen_wakes += 1
                            self.wake.release()
                        elif self.threads < self.max_workers + 1:
                            self.threads += 1
                            spawn_listener = True
                        else:  # every worker is busy: the calls wait, this one keeps listening
                            backlog.extend(calls)
                            self.listening += 1
                            continue
                        self.listening += 1  # on the woken (or new) worker's behalf
                    if len(calls) > 1:
                        backlog.extend(calls[1:])
                        spawn_helper = self._helper()
                if spawn_listener:
                    self.spawn()
                if spawn_helper:
                    self.spawn(helper=True)
                self._guarded(self.run_call, calls[0])
                if self._drain(False):
                    return
        finally:
            with lock:
                self.threads -= 1
                last = self.threads == 0 and self.stopping
            if last:
                self.release()

    def _helper(self) -> bool:
        """Under the lock, with calls in the backlog: one more worker for them (a parked one
        woken, or a new one counted: True, the caller starts it), unless one is on its way."""
        if self.helping:
            return False
        if self.parked:
            self.parked -= 1
            self.helping = True
            self.wake.release()
        elif self.threads < self.max_workers + 1:
            self.threads += 1
            self.helping = True
            return True
        return False

    def _drain(self, woken: bool) -> bool:
        """After a handler, or woken for the backlog (or started for it: `woken`): the
        backlog's calls while another worker listens; then listen (counted here) if fewer than
        two do, else park. A parked worker woken to listen was counted by its waker: it goes
        to the queue. True: stopping."""
        lock = self.lock
        backlog = self.backlog
        while True:
            spawn = False
            with lock:
                if woken:
                    self.helping = False
                    woken = False
                if backlog and self.listening > 0:
                    ev = backlog.popleft()
                    park = None
                    if backlog:
                        # More wait behind this one, whose handler may be slow too. (A fast
                        # handler keeps the GIL and drains them before the woken worker runs:
                        # then it finds nothing and parks.)
                        spawn = self._helper()
                elif backlog:  # nobody listens: this worker does, and one more for the calls
                    spawn = self._helper()
                    self.listening += 1
                    park = False
                elif self.listening >= 2 and not self.stopping:
                    self.parked += 1
                    park = True
                else:
                    self.listening += 1
                    park = False
            if spawn:
                self.spawn(helper=True)
            if park is None:
                self._guarded(self.run_call, ev)
            elif park:
                self.wake.acquire()
                if self.stopping:
                    return True
                with lock:
                    if self.listen_wakes:  # woken to listen (counted as listening)
                        self.listen_wakes -= 1
                        return False
                woken = True  # woken for the backlog
            else:
                return False

    def start(self) -> None:
        self.queue = self.rt.new_queue()
        self.native.start(self.queue)
        self.started = True
        with self.lock:
            self.threads = 2
            self.listening = 2  # counted before they start (see work)
        self.spawn()
        self.spawn()

    def begin_stop(self, grace_ms: int) -> None:
        """Graceful shutdown without a thread of its own: the library sends SERVER_SHUTDOWN to
        the workers' queue once every call has ended; the worker that takes it shuts the queue
        down, and the last worker to leave destroys the server. Once only (callers check)."""
        self.stopping = True
        if not self.started:
            self.release()
            return
        N.swiftgrpc_server_shutdown_notify(self.handle, grace_ms, self.queue, None)

    def shutdown_done(self) -> None:
        """A worker took SERVER_SHUTDOWN: the workers end (the parked ones are woken)."""
        N.swiftgrpc_queue_shutdown(self.queue)
        with self.lock:
            n = self.threads
        for _ in range(n):
            self.wake.release()

    def release(self) -> None:
        """The server stopped and no worker is left: its handles go."""
        N.swiftgrpc_server_destroy(self.handle)
        if self.queue:
            N.swiftgrpc_queue_destroy(self.queue)
        self.stopped.set()


def _stop_state(state: _ServerState, wait: bool = False) -> None:
    """Stops a server dropped without stop() (at collection: without waiting) or still running
    at exit (waiting a little for its workers, unless called on one of them)."""
    with state.lock:
        begin = not state.stop_begun
        state.stop_begun = True
    if begin:
        try:
            state.begin_stop(0)
        except Exception:
            pass
    if wait and threading.current_thread().name != _WORKER_NAME:
        state.stopped.wait(5)


class Server(ServerAPI):
    """A gRPC server with grpcio's ``grpc.Server`` API.

    ``thread_pool`` (a ``concurrent.futures.ThreadPoolExecutor``) or ``max_workers`` bounds how
    many handlers run at once (default 32); swiftgrpc runs handlers on its own worker threads
    rather than submitting each call to the pool. Options: message and metadata sizes,
    ``grpc.max_concurrent_streams``, ``grpc.default_compression_algorithm``, keepalive and its
    enforcement (``grpc.keepalive_time_ms``, ``grpc.keepalive_timeout_ms``,
    ``grpc.keepalive_permit_without_calls``, ``grpc.http2.min_ping_interval_without_data_ms``,
    ``grpc.http2.max_ping_strikes``) and connection idle and age (``grpc.max_connection_idle_ms``,
    ``grpc.max_connection_age_ms``, ``grpc.max_connection_age_grace_ms``), ``grpc.so_reuseport``
    (default 0 here, 1 in grpcio). Another option of grpcio's is refused with a ValueError
    naming it (channel options are accepted and do nothing, as in grpcio)."""

    def __init__(self, thread_pool: Any = None, handlers: Optional[Iterable[Any]] = None,
                 interceptors: Optional[Sequence[Any]] = None,
                 options: Optional[Sequence[Tuple[str, Any]]] = None,
                 maximum_concurrent_rpcs: Optional[int] = None, compression: Any = None,
                 xds: bool = False, *, max_workers: Optional[int] = None) -> None:
        interceptors = check_server_interceptors(interceptors)
        if max_workers is None:
            max_workers = getattr(thread_pool, "_max_workers", None) or 32
        self._state = _ServerState(max_workers, with_compression_option(options, compression,
                                                                        "a server"),
                                   maximum_concurrent_rpcs)
        self._state.interceptors = interceptors
        self._native = self._state.native
        self._finalizer = weakref.finalize(self, _stop_state, self._state)
        self._state.rt.adopt(self)
        if handlers:
            self.add_generic_rpc_handlers(handlers)

    # -- lifecycle
    def start(self) -> None:
        if self._state.forked:
            raise UsageError(f"the server was {FORKED_MESSAGE}")
        if self._state.started:
            raise UsageError("the server was already started")
        if self._state.stopping or self._state.stopped.is_set():
            raise UsageError("the server was stopped")
        self._state.start()

    def stop(self, grace: Optional[float]) -> threading.Event:
        """Stops serving: no new calls; calls in flight get `grace` seconds (None: none), then are
        cancelled. Returns an Event set once everything has ended. Idempotent."""
        state = self._state
        if grace is not None and grace < 0:
            raise ValueError("grace must be >= 0 seconds or None")
        with state.lock:
            begin = not state.stop_begun
            state.stop_begun = True
        if begin:
            state.begin_stop(0 if grace is None else int(grace * 1000))
        return state.stopped

    def wait_for_termination(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the server stopped; True if `timeout` passed first."""
        return not self._state.stopped.wait(timeout)

    def _close_at_exit(self) -> None:
        _stop_state(self._state, wait=True)

    def _forget_after_fork(self) -> None:
        """In a forked child: this server is the parent's (its threads are not here); it
        counts as stopped, and is refused."""
        self._finalizer.detach()
        state = self._state
        state.lock = threading.Lock()
        state.stop_begun = state.stopping = True
        state.forked = True
        state.stopped = threading.Event()
        state.stopped.set()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop(None).wait()


def server(thread_pool: Any = None, handlers: Optional[Iterable[Any]] = None,
           interceptors: Optional[Sequence[Any]] = None,
           options: Optional[Sequence[Tuple[str, Any]]] = None,
           maximum_concurrent_rpcs: Optional[int] = None, compression: Any = None,
           xds: bool = False, *, max_workers: Optional[int] = None) -> Server:
    """grpcio's ``grpc.server(...)``; see Server."""
    return Server(thread_pool, handlers, interceptors, options, maximum_concurrent_rpcs,
                  compression, xds, max_workers=max_workers)
