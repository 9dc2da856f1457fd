"""The synchronous client: grpcio's channel and multi-callables on libswiftgrpc.

Each call takes a drained event queue from a pool and the calling thread waits on it itself
(with the GIL released): a blocking unary call costs one start, one wait and no hand-off
between Python threads. Streaming calls share their queue between a reader and a sender thread
through a condition: whoever needs the next event pulls it, the others are woken."""
from __future__ import annotations

import collections
import ctypes
import logging
import threading
import weakref
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from . import _native as N
from . import _options
from ._credentials import INSECURE, CallCredentials, ChannelCredentials
from ._common import (FUTURE_CANCELLED_BASES, FUTURE_TIMEOUT_BASES, Batches, ChannelConnectivity,
                      Event, FORKED_MESSAGE, connectivity, state_int, Metadatum, RpcError, StatusCode, UsageError, as_bytes,
                      build_metadata, call_compression_flags, compression_algorithm,
                      deadline_from_timeout, next_event, raise_native, runtime, status_code,
                      with_compression_option)

_LOG = logging.getLogger("swiftgrpc")

_start = N.swiftgrpc_client_call_start
_start_v2 = N.swiftgrpc_client_call_start_v2
_CALL_ARGS_SIZE = ctypes.sizeof(N.CallArgs)
# Response reads a streaming call keeps asked (of SWIFTGRPC_MAX_OUTSTANDING_READS): the messages
# handed over ahead of the iterator's asking, at most.
_READ_WINDOW = 16
_NULL_FN = N.NULL_HOST_FN


class FutureTimeoutError(*FUTURE_TIMEOUT_BASES):  # type: ignore[misc]
    """A future's result did not arrive within the timeout (grpcio's FutureTimeoutError)."""


class FutureCancelledError(*FUTURE_CANCELLED_BASES):  # type: ignore[misc]
    """The future's call was cancelled (grpcio's FutureCancelledError)."""


_INT_OPTIONS = {
    "grpc.max_receive_message_length": N.CHANNEL_MAX_RECV_MESSAGE_SIZE,
    "grpc.max_send_message_length": N.CHANNEL_MAX_SEND_MESSAGE_SIZE,
    "grpc.keepalive_time_ms": N.CHANNEL_KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": N.CHANNEL_KEEPALIVE_TIMEOUT_MS,
    "grpc.keepalive_permit_without_calls": N.CHANNEL_KEEPALIVE_PERMIT_WITHOUT_CALLS,
    "grpc.initial_reconnect_backoff_ms": N.CHANNEL_INITIAL_BACKOFF_MS,
    "grpc.max_reconnect_backoff_ms": N.CHANNEL_MAX_BACKOFF_MS,
    "grpc.min_reconnect_backoff_ms": N.CHANNEL_CONNECT_TIMEOUT_MS,
    "swiftgrpc.default_timeout_ms": N.CHANNEL_DEFAULT_TIMEOUT_MS,
    "grpc.max_metadata_size": N.CHANNEL_MAX_METADATA_SIZE,
    "grpc.absolute_max_metadata_size": N.CHANNEL_MAX_METADATA_SIZE,
    "grpc.dns_min_time_between_resolutions_ms": N.CHANNEL_MIN_TIME_BETWEEN_RESOLUTIONS_MS,
}
_STR_OPTIONS = {
    "grpc.primary_user_agent": N.CHANNEL_USER_AGENT,
    "grpc.default_authority": N.CHANNEL_AUTHORITY,
}


_HANDLED = tuple(_INT_OPTIONS) + tuple(_STR_OPTIONS) + (
    "grpc.default_compression_algorithm", "grpc.lb_policy_name", "grpc.ssl_target_name_override")


def channel_args(options: Optional[Sequence[Tuple[str, Any]]]) -> Tuple[Any, int]:
    """swiftgrpc_channel_arg array from grpcio-style options; one grpcio honours and swiftgrpc
    does not is a ValueError (see _options)."""
    _options.check(options, _HANDLED, "a channel", _options.SERVER_ONLY)
    args = []
    for key, value in options or ():
        if key == "grpc.default_compression_algorithm":
            args.append((N.CHANNEL_DEFAULT_COMPRESSION, compression_algorithm(value, key) or 0, None))
        elif key in _INT_OPTIONS:
            v = int(value)
            if key in ("grpc.max_receive_message_length", "grpc.max_send_message_length") and v < 0:
                v = (1 << 32) - 1  # grpcio: -1 = unlimited
            args.append((_INT_OPTIONS[key], v, None))
        elif key in _STR_OPTIONS:
            args.append((_STR_OPTIONS[key], 0, str(value).encode()))
        elif key == "grpc.lb_policy_name":
            policy = {"pick_first": N.LB_PICK_FIRST, "round_robin": N.LB_ROUND_ROBIN}.get(value)
            if policy is None:
                raise ValueError(f"unknown load-balancing policy {value!r}")
            args.append((N.CHANNEL_LB_POLICY, policy, None))
    arr = (N.ChannelArg * max(1, len(args)))()
    for i, (k, iv, sv) in enumerate(args):
        arr[i].key, arr[i].int_value, arr[i].string_value = k, iv, sv
    return arr, len(args)


class _Watcher:
    """Watches one channel's connectivity from a thread of its own, for `subscribe` callbacks
    and asyncio waiters: each listener is called with every new state (and, when added, the
    current one). The thread ends when the last listener goes or the channel shuts down."""

    SLICE_MS = 250  # waits are sliced, so that the thread notices it is no longer wanted

    def __init__(self, channel: "Channel") -> None:
        self._handle = channel._handle
        self._lock = threading.Lock()
        self._listeners: List[Tuple[Callable[[ChannelConnectivity], Any], bool]] = []
        self._thread: Optional[threading.Thread] = None
        self._state: Optional[int] = None  # last delivered

    def add(self, listener: Callable[[ChannelConnectivity], Any], try_to_connect: bool) -> None:
        with self._lock:
            self._listeners.append((listener, try_to_connect))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="swiftgrpc-connectivity",
                                                daemon=True)
                self._thread.start()
                return
            state = self._state
        if state is not None:  # as grpcio: a new subscriber hears the current state at once
            self._call(listener, state)

    def remove(self, listener: Callable[[ChannelConnectivity], Any]) -> None:
        with self._lock:
            self._listeners = [(f, t) for f, t in self._listeners if f != listener]

    @staticmethod
    def _call(listener: Callable[[ChannelConnectivity], Any], state: int) -> None:
        try:
            listener(connectivity(state))
        except Exception:
            _LOG.exception("swiftgrpc: a connectivity callback raised")

    def _run(self) -> None:
        out = ctypes.c_int()
        h = self._handle
        state = None
        asked = False  # asked to connect since the state became IDLE: then only wait
        while True:
            with self._lock:
                listeners = list(self._listeners)
                if not listeners:
                    self._thread = None
                    return
            connect = any(t for _, t in listeners)
            if state is None or (connect and state == N.STATE_IDLE and not asked):
                asked = connect
                if N.swiftgrpc_channel_state(h, int(connect), ctypes.byref(out)) < 0:
                    new = N.STATE_SHUTDOWN  # destroyed
                else:
                    new = out.value
            else:
                rc = N.swiftgrpc_channel_wait_state_change(h, state, self.SLICE_MS, ctypes.byref(out))
                if rc == N.E_TIMEOUT:
                    continue
                new = out.value if rc == 0 else N.STATE_SHUTDOWN
            if new != state:
                state = new
                asked = False
                with self._lock:
                    self._state = state
                    listeners = list(self._listeners)
                for f, _ in listeners:
                    self._call(f, state)
            if state == N.STATE_SHUTDOWN:
                with self._lock:
                    self._listeners = []
                    self._thread = None
                return


def _destroy_channel(handle: int) -> None:
    N.swiftgrpc_channel_destroy(handle)


class Channel:
    """A client channel to `target` (grpcio's target forms: "host:port", "dns:///host:port",
    "unix:path", "ipv4:a:p,b:p", ...). Thread-safe; close() or use it as a context manager."""

    def __init__(self, target: str, options: Optional[Sequence[Tuple[str, Any]]] = None,
                 compression: Any = None, credentials: Optional[ChannelCredentials] = None) -> None:
        if not isinstance(target, str):
            raise TypeError(f"target must be str, got {type(target).__name__}")
        options = with_compression_option(options, compression, "a channel")
        if credentials is not None and not isinstance(credentials, ChannelCredentials):
            raise TypeError(f"credentials must be ChannelCredentials (ssl_channel_credentials()), "
                            f"got {type(credentials).__name__}")
        self._rt = runtime()
        arr, n = channel_args(options)
        h = N.H()
        try:
            if credentials is None:
                N.check(N.swiftgrpc_channel_create(self._rt.handle, target.encode(), arr, n, ctypes.byref(h)),
                        "swiftgrpc_channel_create")
            else:
                override = dict(options or ()).get("grpc.ssl_target_name_override")
                creds = credentials._handle if override is None else credentials._create(str(override))
                try:
                    N.check(N.swiftgrpc_channel_create_secure(self._rt.handle, target.encode(), creds, arr, n,
                                                              ctypes.byref(h)),
                            "swiftgrpc_channel_create_secure")
                finally:
                    if override is not None:
                        N.swiftgrpc_channel_credentials_destroy(creds)  # the channel keeps them
        except N.NativeError as e:
            raise_native(e)
        self._credentials = credentials  # its metadata plugins stay alive with the channel
        self._handle = h.value
        self.target = target
        self._closed = False
        self._forked = False  # made before fork(), in the child: refused
        self._watcher: Optional[_Watcher] = None  # subscribe()'s, made on first use
        self._finalizer = weakref.finalize(self, _destroy_channel, self._handle)
        self._rt.adopt(self)

    # -- multi-callables
    def unary_unary(self, method: str, request_serializer: Any = None,
                    response_deserializer: Any = None, _registered_method: Any = False) -> "UnaryUnaryMultiCallable":
        return UnaryUnaryMultiCallable(self, method, request_serializer, response_deserializer)

    def unary_stream(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: Any = False) -> "UnaryStreamMultiCallable":
        return UnaryStreamMultiCallable(self, method, request_serializer, response_deserializer)

    def stream_unary(self, method: str, request_serializer: Any = None,
                     response_deserializer: Any = None, _registered_method: Any = False) -> "StreamUnaryMultiCallable":
        return StreamUnaryMultiCallable(self, method, request_serializer, response_deserializer)

    def stream_stream(self, method: str, request_serializer: Any = None,
                      response_deserializer: Any = None, _registered_method: Any = False) -> "StreamStreamMultiCallable":
        return StreamStreamMultiCallable(self, method, request_serializer, response_deserializer)

    # -- connectivity
    def get_state(self, try_to_connect: bool = False) -> ChannelConnectivity:
        """The connectivity state (as grpc.aio's Channel.get_state; a swiftgrpc extension on
        sync channels, where grpcio has only subscribe)."""
        return connectivity(self._state(try_to_connect))

    def _state(self, try_to_connect: bool = False) -> int:
        s = ctypes.c_int()
        N.check(N.swiftgrpc_channel_state(self._handle, int(try_to_connect), ctypes.byref(s)),
                "swiftgrpc_channel_state")
        return s.value

    def wait_for_state_change(self, last_state: Any,
                              timeout: Optional[float] = None) -> Optional[ChannelConnectivity]:
        """The new state, or None if it did not change from `last_state` within `timeout`
        seconds (a swiftgrpc extension; blocks the calling thread)."""
        s = ctypes.c_int()
        ms = -1 if timeout is None else int(timeout * 1000)
        rc = N.swiftgrpc_channel_wait_state_change(self._handle, state_int(last_state), ms,
                                                   ctypes.byref(s))
        if rc == N.E_TIMEOUT:
            return None
        N.check(rc, "swiftgrpc_channel_wait_state_change")
        return connectivity(s.value)

    def wait_for_ready(self, timeout: Optional[float] = None) -> bool:
        """Connects and waits until READY; False if `timeout` seconds passed first."""
        deadline = None if timeout is None else N.now_ns() + int(timeout * 1e9)
        state = self._state(True)
        while state != N.STATE_READY:
            if state == N.STATE_SHUTDOWN:
                return False
            left = None if deadline is None else (deadline - N.now_ns()) / 1e9
            if left is not None and left <= 0:
                return False
            new = self.wait_for_state_change(state, left)
            if new is None:
                return False
            state = new.value[0] if new != ChannelConnectivity.IDLE else self._state(True)
        return True

    def subscribe(self, callback: Callable[[ChannelConnectivity], None],
                  try_to_connect: bool = False) -> None:
        """grpcio's: `callback` is called with the current ChannelConnectivity, then with each
        new one, on a thread of swiftgrpc's; `try_to_connect` keeps the channel connecting
        while it is subscribed."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if self._watcher is None:
            self._watcher = _Watcher(self)
        self._watcher.add(callback, bool(try_to_connect))

    def unsubscribe(self, callback: Callable[[ChannelConnectivity], None]) -> None:
        if self._watcher is not None:
            self._watcher.remove(callback)

    # -- lifecycle
    def close(self) -> None:
        """Cancels every call in flight and closes the connections. Idempotent."""
        if not self._closed:
            self._closed = True
            self._finalizer()

    def _close_at_exit(self) -> None:
        self.close()

    def _forget_after_fork(self) -> None:
        """In a forked child: this channel is the parent's; it is refused from now on."""
        self._finalizer.detach()
        self._closed = self._forked = True
        self._watcher = None

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- starting calls
    def _start(self, method: bytes, kind: int, metadata: Any, body: Optional[bytes],
               timeout: Optional[float], wait_for_ready: Optional[bool], queue: int,
               credentials: Optional[CallCredentials] = None, deadline: Optional[int] = None,
               compression: Any = None) -> int:
        """Starts a call; `deadline` (absolute, of now_ns) when the caller computed it already;
        `compression` (grpc.Compression) instead of the channel's."""
        if self._closed:
            raise UsageError(f"the channel was {FORKED_MESSAGE}" if self._forked else "the channel is closed")
        arr, n = build_metadata(metadata)
        if deadline is None:
            deadline = deadline_from_timeout(timeout) if timeout is not None else N.DEADLINE_DEFAULT
        flags = N.CALL_WAIT_FOR_READY if wait_for_ready else 0
        if compression is not None:
            flags |= call_compression_flags(compression)
        h = N.H()
        if credentials is None:
            rc = _start(self._handle, method, kind, arr, n, body, len(body) if body else 0, deadline,
                        flags, queue, _NULL_FN, None, ctypes.byref(h))
        else:
            if not isinstance(credentials, CallCredentials):
                raise TypeError(f"credentials must be CallCredentials, got {type(credentials).__name__}")
            args = N.CallArgs(_CALL_ARGS_SIZE, method, kind, arr, n, body, len(body) if body else 0,
                              deadline, flags, queue, _NULL_FN, None, credentials._handle)
            rc = _start_v2(self._handle, ctypes.byref(args), ctypes.byref(h))
        if rc < 0:
            msg = N.last_error() or N.errstr(rc)
            if rc == N.E_WRONG_STATE or rc == N.E_BAD_HANDLE:
                raise UsageError(f"the channel is closed ({msg})")
            if rc in (N.E_INVALID_METADATA, N.E_INVALID_ARGUMENT, N.E_INVALID_UTF8, N.E_TOO_LARGE):
                raise ValueError(msg)
            N.check(rc, "swiftgrpc_client_call_start")
        return h.value


def _method_bytes(method: str) -> bytes:
    if not isinstance(method, str):
        raise TypeError(f"method must be str, got {type(method).__name__}")
    return method.encode()


def _serialize(serializer: Any, request: Any) -> bytes:
    if serializer is not None:
        return serializer(request)
    return as_bytes(request, "request")


class _Outcome:
    """The end of a call, as grpcio's Call interface reports it (with_call's second value)."""

    def __init__(self, ev: Event) -> None:
        self._code = status_code(ev.status_code)
        self._details = ev.status_message
        self._initial = ev.metadata
        self._trailing = ev.trailers

    code = RpcError.code
    details = RpcError.details
    initial_metadata = RpcError.initial_metadata
    trailing_metadata = RpcError.trailing_metadata
    is_active = RpcError.is_active
    time_remaining = RpcError.time_remaining
    cancel = RpcError.cancel
    add_callback = RpcError.add_callback


def _error(ev: Event) -> RpcError:
    return RpcError(status_code(ev.status_code), ev.status_message, ev.metadata, ev.trailers)


def _wait_status(ch: Channel, call: int, q: int) -> Event:
    """Waits on `q` for the STATUS of a unary-response call. Ctrl-C cancels the call."""
    try:
        while True:
            ev = next_event(q, 1000)
            if isinstance(ev, int):
                if ev == N.E_TIMEOUT:
                    continue
                raise UsageError(f"event queue failed: {N.errstr(ev)}")
            if ev.type == N.EVENT_CLIENT_STATUS:
                return ev
    except BaseException:
        N.swiftgrpc_client_cancel(ch._handle, call)
        while True:  # the STATUS follows the cancel; then the queue is clean again
            ev = next_event(q, 5000)
            if isinstance(ev, int) or ev.type == N.EVENT_CLIENT_STATUS:
                break
        raise


class _MultiCallable:
    def __init__(self, channel: Channel, method: str, serializer: Any, deserializer: Any) -> None:
        self._channel = channel
        self._method = _method_bytes(method)
        self._name = method
        self._ser = serializer
        self._deser = deserializer

    def _response(self, body: Optional[bytes]) -> Any:
        d = self._deser
        return d(body) if d is not None else body


class UnaryUnaryMultiCallable(_MultiCallable):
    def _blocking(self, request: Any, timeout: Optional[float], metadata: Any,
                  wait_for_ready: Optional[bool], credentials: Any,
                  compression: Any = None) -> Tuple[Any, Event]:
        body = _serialize(self._ser, request)
        ch = self._channel
        rt = ch._rt
        q = rt.take_queue()
        try:
            call = ch._start(self._method, N.KIND_UNARY, metadata, body, timeout, wait_for_ready, q,
                             credentials, compression=compression)
        except BaseException:
            rt.give_queue(q)
            raise
        ev = _wait_status(ch, call, q)
        rt.give_queue(q)
        if ev.status_code != 0:
            raise _error(ev)
        return self._response(ev.message or b""), ev

    def __call__(self, request: Any, timeout: Optional[float] = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: Optional[bool] = None,
                 compression: Any = None) -> Any:
        return self._blocking(request, timeout, metadata, wait_for_ready, credentials, compression)[0]

    def with_call(self, request: Any, timeout: Optional[float] = None, metadata: Any = None,
                  credentials: Any = None, wait_for_ready: Optional[bool] = None,
                  compression: Any = None) -> Tuple[Any, _Outcome]:
        response, ev = self._blocking(request, timeout, metadata, wait_for_ready, credentials, compression)
        return response, _Outcome(ev)

    def future(self, request: Any, timeout: Optional[float] = None, metadata: Any = None,
               credentials: Any = None, wait_for_ready: Optional[bool] = None,
               compression: Any = None) -> "CallFuture":
        body = _serialize(self._ser, request)
        return CallFuture(self._channel, self._method, N.KIND_UNARY, body, None, timeout,
                          metadata, wait_for_ready, self._ser, self._deser, credentials,
                          compression=compression)


class StreamUnaryMultiCallable(_MultiCallable):
    def _blocking(self, request_iterator: Any, timeout: Optional[float], metadata: Any,
                  wait_for_ready: Optional[bool], credentials: Any,
                  compression: Any = None) -> Tuple[Any, _Outcome]:
        call = _StreamCall(self._channel, self._method, N.KIND_CLIENT_STREAMING, None,
                           request_iterator, timeout, metadata, wait_for_ready, self._ser,
                           self._deser, credentials, send_inline=True, compression=compression)
        ev = call._final()
        if ev.status_code != 0:
            raise _error(ev)
        return self._response(ev.message or b""), _Outcome(ev)

    def __call__(self, request_iterator: Any, timeout: Optional[float] = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: Optional[bool] = None,
                 compression: Any = None) -> Any:
        return self._blocking(request_iterator, timeout, metadata, wait_for_ready, credentials,
                              compression)[0]

    def with_call(self, request_iterator: Any, timeout: Optional[float] = None, metadata: Any = None,
                  credentials: Any = None, wait_for_ready: Optional[bool] = None,
                  compression: Any = None) -> Tuple[Any, _Outcome]:
        return self._blocking(request_iterator, timeout, metadata, wait_for_ready, credentials,
                              compression)

    def future(self, request_iterator: Any, timeout: Optional[float] = None, metadata: Any = None,
               credentials: Any = None, wait_for_ready: Optional[bool] = None,
               compression: Any = None) -> "CallFuture":
        return CallFuture(self._channel, self._method, N.KIND_CLIENT_STREAMING, None,
                          request_iterator, timeout, metadata, wait_for_ready, self._ser,
                          self._deser, credentials, compression=compression)


class UnaryStreamMultiCallable(_MultiCallable):
    def __call__(self, request: Any, timeout: Optional[float] = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: Optional[bool] = None,
                 compression: Any = None) -> "_StreamCall":
        body = _serialize(self._ser, request)
        return _StreamCall(self._channel, self._method, N.KIND_SERVER_STREAMING, body, None,
                           timeout, metadata, wait_for_ready, self._ser, self._deser, credentials,
                           compression=compression)


class StreamStreamMultiCallable(_MultiCallable):
    def __call__(self, request_iterator: Any, timeout: Optional[float] = None, metadata: Any = None,
                 credentials: Any = None, wait_for_ready: Optional[bool] = None,
                 compression: Any = None) -> "_StreamCall":
        return _StreamCall(self._channel, self._method, N.KIND_BIDI_STREAMING, None,
                           request_iterator, timeout, metadata, wait_for_ready, self._ser,
                           self._deser, credentials, compression=compression)


class _StreamCall(RpcError):
    """A call in progress: an iterator of responses (streaming responses), grpcio's Call
    interface, and — once it failed — the RpcError raised from iteration."""

    def __init__(self, channel: Channel, method: bytes, kind: int, body: Optional[bytes],
                 requests: Any, timeout: Optional[float], metadata: Any,
                 wait_for_ready: Optional[bool], ser: Any, deser: Any, credentials: Any = None,
                 send_inline: bool = False, compression: Any = None) -> None:
        Exception.__init__(self, "RPC in progress")
        if kind in (N.KIND_CLIENT_STREAMING, N.KIND_BIDI_STREAMING):
            try:
                requests = iter(requests)
            except TypeError:
                raise TypeError(f"request_iterator must be iterable, got "
                                f"{type(requests).__name__}") from None
        self._channel = channel
        self._ser = ser
        self._deser = deser
        self._creds = credentials  # a metadata plugin stays alive while the call is
        self._cv = threading.Condition(threading.Lock())
        self._pumping = False
        self._take: Optional[Batches] = None
        self._messages: "collections.deque[bytes]" = collections.deque()
        self._stream_end = False
        self._reads_pending = 0  # reads asked and not answered yet (a window of them)
        self._send_pending = False
        self._initial: Optional[Tuple[Metadatum, ...]] = None
        self._status: Optional[Event] = None
        self._local_end = False  # ended here (cancelled, or the runtime gone): _status set here
        self._cancelled = False  # cancel() ended it
        self._callbacks: List[Callable[[], Any]] = []
        self._deadline = None if timeout is None else deadline_from_timeout(timeout)
        rt = channel._rt
        self._q = rt.take_queue()
        try:
            self._call = channel._start(method, kind, metadata, body, timeout, wait_for_ready, self._q,
                                        credentials, compression=compression)
        except BaseException:
            rt.give_queue(self._q)
            raise
        if requests is not None:
            if send_inline:
                self._send_all(requests)
            else:
                threading.Thread(target=self._send_all, args=(requests,),
                                 name="swiftgrpc-request-sender", daemon=True).start()

    # -- event plumbing
    def _apply(self, ev: Event) -> None:
        t = ev.type
        if t == N.EVENT_CLIENT_MESSAGE:
            self._reads_pending -= 1
            if ev.message is None:
                self._stream_end = True
            else:
                self._messages.append(ev.message)
        elif t == N.EVENT_CLIENT_SEND_DONE:
            self._send_pending = False
        elif t == N.EVENT_CLIENT_INITIAL_METADATA:
            self._initial = ev.metadata
        elif t == N.EVENT_CLIENT_STATUS:
            if self._local_end:
                return  # cancelled here first; its queue is being dropped
            if self._initial is None:
                self._initial = ev.metadata
            self._status = ev
            self._channel._rt.give_queue(self._q)  # STATUS is the call's last event
            self._q = 0

    def _await(self, ready: Callable[[], Any], timeout: Optional[float] = None) -> bool:
        """Waits until ready() (or the STATUS); pulls events itself unless another thread is."""
        end = None if timeout is None else N.now_ns() + int(timeout * 1e9)
        cv = self._cv
        with cv:
            while not ready() and self._status is None:
                left_ms = -1 if end is None else max(0, (end - N.now_ns()) // 1_000_000)
                if end is not None and left_ms == 0:
                    return False
                if self._pumping:
                    cv.wait(None if left_ms < 0 else left_ms / 1000)
                    continue
                self._pumping = True
                take = self._take
                if take is None or take.queue != self._q:
                    take = self._take = Batches(self._q, _READ_WINDOW + 2)
                cv.release()
                try:
                    evs = take.next(1000 if left_ms < 0 else min(left_ms, 1000))
                finally:
                    cv.acquire()
                    self._pumping = False
                if self._local_end:  # cancelled while this thread waited on the queue
                    self._drop_queue()
                elif not isinstance(evs, int):
                    for ev in evs:
                        self._apply(ev)
                elif evs == N.E_SHUTDOWN or evs == N.E_BAD_HANDLE:  # the runtime is gone (exit)
                    self._end_locally(StatusCode.CANCELLED.value[0], "Channel closed!")
                elif evs != N.E_TIMEOUT:
                    raise UsageError(f"event queue failed: {N.errstr(evs)}")
                cv.notify_all()
            done = self._status is not None
        if done:
            self._run_callbacks()
        return True

    def _final(self) -> Event:
        try:
            self._await(lambda: False)
        except BaseException:
            self.cancel()
            self._await(lambda: False)
            raise
        return self._status  # type: ignore[return-value]

    def _run_callbacks(self) -> None:
        with self._cv:
            cbs, self._callbacks = self._callbacks, []
        for cb in cbs:
            try:
                cb()
            except Exception:
                pass

    def _send_all(self, requests: Iterator[Any]) -> None:
        ch = self._channel._handle
        call = self._call
        try:
            for req in requests:
                if self._status is not None:
                    return
                body = _serialize(self._ser, req)
                with self._cv:
                    self._send_pending = True
                rc = N.swiftgrpc_client_send_message(ch, call, body, len(body))
                if rc < 0:
                    with self._cv:
                        self._send_pending = False
                    if rc == N.E_TOO_LARGE:
                        N.swiftgrpc_client_cancel(ch, call)
                    return
                self._await(lambda: not self._send_pending)
            N.swiftgrpc_client_half_close(ch, call)
        except BaseException:
            N.swiftgrpc_client_cancel(ch, call)  # grpcio: a failing request iterator cancels
            raise

    # -- iteration
    def __iter__(self) -> "_StreamCall":
        return self

    def __next__(self) -> Any:
        while True:
            if self._local_end:  # cancelled here: as grpcio, no more messages, the error
                raise self
            if self._messages:
                body = self._messages.popleft()
                if self._reads_pending + len(self._messages) < _READ_WINDOW // 2:
                    self._ask_reads()  # top the window up, in halves
                d = self._deser
                return d(body) if d is not None else body
            if self._stream_end or self._status is not None:
                ev = self._final()
                if ev.status_code == 0:
                    raise StopIteration
                raise self
            if not self._ask_reads():
                self._final()
                continue
            try:
                self._await(lambda: bool(self._messages) or self._stream_end)
            except BaseException:
                self.cancel()
                raise

    next = __next__

    def _ask_reads(self) -> bool:
        """Keeps _READ_WINDOW reads asked (messages already received then come without a round
        trip each); False if the library refused one (the call is over)."""
        with self._cv:
            if self._stream_end or self._status is not None:
                return True
            want = _READ_WINDOW - self._reads_pending - len(self._messages)
            if want <= 0:
                return True
            self._reads_pending += want
        read = N.swiftgrpc_client_read
        for i in range(want):
            if read(self._channel._handle, self._call) < 0:
                with self._cv:
                    self._reads_pending -= want - i
                return False
        return True

    def _end_locally(self, code: int, details: str) -> None:
        """Ends the call here, at once (with self._cv held): its status is `code`; the queue
        (with the library's STATUS still to come) is dropped, by the thread waiting on it if
        one is."""
        self._local_end = True
        self._status = Event.local_status(code, details)
        if self._initial is None:
            self._initial = ()
        if not self._pumping:
            self._drop_queue()
        self._cv.notify_all()

    def _drop_queue(self) -> None:
        q, self._q = self._q, 0
        if q:
            N.swiftgrpc_queue_destroy(q)  # drops the STATUS still to come

    # -- grpcio's Call / RpcError interface
    def cancel(self) -> bool:
        """Cancels the call, as grpcio does: at once it is done, with CANCELLED "Locally
        cancelled by application!" (the server is told; its own answer no longer counts)."""
        with self._cv:
            if self._status is not None:
                return False
            N.swiftgrpc_client_cancel(self._channel._handle, self._call)
            self._cancelled = True
            self._end_locally(StatusCode.CANCELLED.value[0], "Locally cancelled by application!")
        self._run_callbacks()
        return True

    def is_active(self) -> bool:
        return self._status is None

    def done(self) -> bool:
        return self._status is not None

    def time_remaining(self) -> Optional[float]:
        if self._deadline is None or self._deadline >= N.DEADLINE_NONE - 1:
            return None
        return max(0.0, (self._deadline - N.now_ns()) / 1e9)

    def add_callback(self, callback: Callable[[], Any]) -> bool:
        with self._cv:
            if self._status is None:
                self._callbacks.append(callback)
                return True
        return False

    # grpcio's response iterators are Futures too
    def cancelled(self) -> bool:
        return self._cancelled

    def running(self) -> bool:
        return self._status is None

    def result(self, timeout: Optional[float] = None) -> Any:
        """Waits for the end of the call: None if it succeeded, else raises."""
        if not self._await(lambda: False, timeout):
            raise FutureTimeoutError()
        if self._cancelled:
            raise FutureCancelledError()
        if self._status is not None and self._status.status_code != 0:
            raise self
        return None

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        try:
            self.result(timeout)
        except RpcError as e:
            return e
        return None

    def traceback(self, timeout: Optional[float] = None) -> Any:
        e = self.exception(timeout)
        return e.__traceback__ if e is not None else None

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        if not self.add_callback(lambda: fn(self)):
            fn(self)

    def initial_metadata(self) -> Tuple[Metadatum, ...]:
        self._await(lambda: self._initial is not None)
        return self._initial or ()

    def trailing_metadata(self) -> Tuple[Metadatum, ...]:
        return self._final().trailers

    def code(self) -> StatusCode:
        return status_code(self._final().status_code)

    def details(self) -> str:
        return self._final().status_message

    def debug_error_string(self) -> str:
        return f"{self.code().name}: {self.details()}"

    def __str__(self) -> str:
        if self._status is None:
            return "<_StreamCall in progress>"
        return (f"<RpcError of RPC that terminated with:\n\tstatus = {self.code()}\n"
                f"\tdetails = \"{self.details()}\"\n>")

    __repr__ = __str__

    def __del__(self) -> None:
        # An abandoned call (iterator dropped early) is cancelled; its queue is not reused.
        try:
            if self._status is None and self._q:
                N.swiftgrpc_client_cancel(self._channel._handle, self._call)
                N.swiftgrpc_queue_destroy(self._q)  # drops the STATUS still to come
        except Exception:
            pass


class CallFuture(_StreamCall):
    """grpcio's future for a unary-response call: ``result()``, ``exception()``,
    ``add_done_callback()`` plus the Call interface. A helper thread waits for the outcome."""

    def __init__(self, channel: Channel, method: bytes, kind: int, body: Optional[bytes],
                 requests: Any, timeout: Optional[float], metadata: Any,
                 wait_for_ready: Optional[bool], ser: Any, deser: Any, credentials: Any = None,
                 compression: Any = None) -> None:
        self._done_callbacks: List[Callable[[Any], Any]] = []
        self._finished = threading.Event()
        super().__init__(channel, method, kind, body, requests, timeout, metadata,
                         wait_for_ready, ser, deser, credentials, compression=compression)
        threading.Thread(target=self._wait, name="swiftgrpc-future", daemon=True).start()

    def _wait(self) -> None:
        self._final()
        self._finish()

    def _finish(self) -> None:
        """The outcome is known: result() returns and the done callbacks run, once."""
        with self._cv:
            if self._finished.is_set():
                return
            self._finished.set()
            cbs, self._done_callbacks = self._done_callbacks, []
        for cb in cbs:
            try:
                cb(self)
            except Exception:
                _LOG.exception("swiftgrpc: a done callback raised")

    def cancel(self) -> bool:
        """grpcio's: at once cancelled() and done() are True and the done callbacks have run."""
        if super().cancel():
            self._finish()
            return True
        return False

    def cancelled(self) -> bool:
        return self._cancelled

    def running(self) -> bool:
        return not self._finished.is_set()

    def done(self) -> bool:
        return self._finished.is_set()

    def result(self, timeout: Optional[float] = None) -> Any:
        if not self._finished.wait(timeout):
            raise FutureTimeoutError()
        ev = self._status
        assert ev is not None
        if ev.status_code != 0:
            if self.cancelled():
                raise FutureCancelledError()
            raise self
        d = self._deser
        body = ev.message or b""
        return d(body) if d is not None else body

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        if not self._finished.wait(timeout):
            raise FutureTimeoutError()
        ev = self._status
        if ev is None or ev.status_code == 0:
            return None
        if self.cancelled():
            raise FutureCancelledError()
        return self

    def traceback(self, timeout: Optional[float] = None) -> None:
        self.exception(timeout)
        return None

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        with self._cv:
            if not self._finished.is_set():
                self._done_callbacks.append(fn)
                return
        fn(self)


class _ChannelReadyFuture:
    """grpcio's ``channel_ready_future(channel)``: a Future done (with None) once the channel
    is READY; it keeps the channel connecting meanwhile. cancel() stops waiting."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._cv = threading.Condition()
        self._matured = False
        self._cancelled = False
        self._callbacks: List[Callable[[Any], Any]] = []
        channel.subscribe(self._update, try_to_connect=True)

    def _update(self, state: ChannelConnectivity) -> None:
        if state != ChannelConnectivity.READY:
            return
        with self._cv:
            if self._matured or self._cancelled:
                return
            self._matured = True
            self._cv.notify_all()
            cbs, self._callbacks = self._callbacks, []
        self._channel.unsubscribe(self._update)
        self._run(cbs)

    def _run(self, cbs: List[Callable[[Any], Any]]) -> None:
        for cb in cbs:
            try:
                cb(self)
            except Exception:
                _LOG.exception("swiftgrpc: a done callback raised")

    def cancel(self) -> bool:
        with self._cv:
            if self._matured:
                return False
            if not self._cancelled:
                self._cancelled = True
                self._cv.notify_all()
            cbs, self._callbacks = self._callbacks, []
        self._channel.unsubscribe(self._update)
        self._run(cbs)
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    def running(self) -> bool:
        return not (self._matured or self._cancelled)

    def done(self) -> bool:
        return self._matured or self._cancelled

    def result(self, timeout: Optional[float] = None) -> None:
        with self._cv:
            if not self._cv.wait_for(lambda: self._matured or self._cancelled, timeout):
                raise FutureTimeoutError()
            if self._cancelled:
                raise FutureCancelledError()
        return None

    def exception(self, timeout: Optional[float] = None) -> None:
        self.result(timeout)
        return None

    def traceback(self, timeout: Optional[float] = None) -> None:
        self.result(timeout)
        return None

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        with self._cv:
            if not (self._matured or self._cancelled):
                self._callbacks.append(fn)
                return
        fn(self)


def channel_ready_future(channel: Any) -> _ChannelReadyFuture:
    """grpcio's ``grpc.channel_ready_future``: ``channel_ready_future(ch).result(timeout=5)``
    waits until the channel is READY (FutureTimeoutError if it is not by then)."""
    return _ChannelReadyFuture(channel)


def insecure_channel(target: str, options: Optional[Sequence[Tuple[str, Any]]] = None,
                     compression: Any = None) -> Channel:
    """grpcio's ``grpc.insecure_channel``."""
    return Channel(target, options, compression)


def secure_channel(target: str, credentials: ChannelCredentials,
                   options: Optional[Sequence[Tuple[str, Any]]] = None, compression: Any = None) -> Channel:
    """grpcio's ``grpc.secure_channel``: TLS with `credentials` (ssl_channel_credentials(),
    perhaps composed with call credentials). The option "grpc.ssl_target_name_override" names
    the host the server's certificate must cover (and the default :authority).
    grpc.experimental.insecure_channel_credentials() makes a plaintext channel, as in grpcio."""
    if credentials is INSECURE:
        return Channel(target, options, compression)
    if not isinstance(credentials, ChannelCredentials):
        raise TypeError(f"credentials must be ChannelCredentials (ssl_channel_credentials()), "
                        f"got {type(credentials).__name__}")
    return Channel(target, options, compression, credentials)
