"""Shared pieces of the idiomatic layer: status codes, RpcError, metadata conversion, event
decoding, the process-wide runtime and its clean teardown at interpreter exit."""
from __future__ import annotations

import atexit
import collections
import collections.abc
import ctypes
import enum
import logging
import os
import threading
import weakref
from typing import Any, List, Optional, Sequence, Tuple, Union

from . import _native as N

try:  # optional: with grpcio installed, `except grpc.RpcError` also catches our errors
    from grpc import RpcError as _GrpcRpcError  # type: ignore
    from grpc import FutureCancelledError as _GrpcCancelled, FutureTimeoutError as _GrpcTimeout
    _RPC_ERROR_BASES: Tuple[type, ...] = (_GrpcRpcError,)
    FUTURE_CANCELLED_BASES: Tuple[type, ...] = (_GrpcCancelled,)
    FUTURE_TIMEOUT_BASES: Tuple[type, ...] = (_GrpcTimeout,)
except ImportError:  # the native API never needs grpcio
    _RPC_ERROR_BASES = FUTURE_CANCELLED_BASES = FUTURE_TIMEOUT_BASES = (Exception,)


class Compression(enum.IntEnum):
    """Message compression, equal in names and values to grpcio's ``grpc.Compression`` (an
    IntEnum too, so members compare equal, and either may be passed). swiftgrpc inflates
    whatever a peer sends compressed and advertises every algorithm; what it sends is compressed
    as the channel, server, call or servicer context asks, toward peers that accept it."""
    NoCompression = 0
    Deflate = 1
    Gzip = 2


def compression_algorithm(compression: Any, where: str) -> Optional[int]:
    """None, or the algorithm number (SWIFTGRPC_COMPRESS_*) of a Compression member (ours or
    grpcio's) or its int value; anything else is a ValueError naming `where`."""
    if compression is None:
        return None
    value = getattr(compression, "value", compression)
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2):
        return value
    raise ValueError(f"{where}: unknown compression {compression!r} (use grpc.Compression or "
                     "swiftgrpc.Compression: NoCompression, Deflate, Gzip)")


_CALL_COMPRESS_FLAGS = (N.CALL_COMPRESS_NONE, N.CALL_COMPRESS_DEFLATE, N.CALL_COMPRESS_GZIP)


def call_compression_flags(compression: Any) -> int:
    """The swiftgrpc_client_call_start flag of a call's `compression=` (0: the channel's)."""
    alg = compression_algorithm(compression, "a call")
    return 0 if alg is None else _CALL_COMPRESS_FLAGS[alg]


def with_compression_option(options: Optional[Sequence[Tuple[str, Any]]], compression: Any,
                            where: str) -> Optional[Sequence[Tuple[str, Any]]]:
    """grpcio's way: `compression=` of a channel or server is the option
    grpc.default_compression_algorithm."""
    alg = compression_algorithm(compression, where)
    if alg is None:
        return options
    return list(options or ()) + [("grpc.default_compression_algorithm", alg)]


class StatusCode(enum.Enum):
    """gRPC status codes, equal in names and values to grpcio's ``grpc.StatusCode`` (and
    comparing equal to its members)."""
    OK = (0, "ok")
    CANCELLED = (1, "cancelled")
    UNKNOWN = (2, "unknown")
    INVALID_ARGUMENT = (3, "invalid argument")
    DEADLINE_EXCEEDED = (4, "deadline exceeded")
    NOT_FOUND = (5, "not found")
    ALREADY_EXISTS = (6, "already exists")
    PERMISSION_DENIED = (7, "permission denied")
    RESOURCE_EXHAUSTED = (8, "resource exhausted")
    FAILED_PRECONDITION = (9, "failed precondition")
    ABORTED = (10, "aborted")
    OUT_OF_RANGE = (11, "out of range")
    UNIMPLEMENTED = (12, "unimplemented")
    INTERNAL = (13, "internal")
    UNAVAILABLE = (14, "unavailable")
    DATA_LOSS = (15, "data loss")
    UNAUTHENTICATED = (16, "unauthenticated")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StatusCode):
            return self is other
        value = getattr(other, "value", None)  # grpc.StatusCode members
        return isinstance(value, tuple) and value == self.value and \
            type(other).__name__ == "StatusCode"

    def __hash__(self) -> int:
        return hash(self.value)


_CODES = {c.value[0]: c for c in StatusCode}


class ChannelConnectivity(enum.Enum):
    """A channel's connectivity state, equal in names and values to grpcio's
    ``grpc.ChannelConnectivity`` (and comparing equal to its members)."""
    IDLE = (N.STATE_IDLE, "idle")
    CONNECTING = (N.STATE_CONNECTING, "connecting")
    READY = (N.STATE_READY, "ready")
    TRANSIENT_FAILURE = (N.STATE_TRANSIENT_FAILURE, "transient failure")
    SHUTDOWN = (N.STATE_SHUTDOWN, "shutdown")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChannelConnectivity):
            return self is other
        value = getattr(other, "value", None)  # grpc.ChannelConnectivity members
        return isinstance(value, tuple) and value == self.value and \
            type(other).__name__ == "ChannelConnectivity"

    def __hash__(self) -> int:
        return hash(self.value)


_STATES = {s.value[0]: s for s in ChannelConnectivity}


def connectivity(state: int) -> ChannelConnectivity:
    return _STATES[state]


def state_int(state: Any) -> int:
    """A SWIFTGRPC_STATE_* value from a ChannelConnectivity (ours or grpcio's) or an int."""
    if isinstance(state, int) and not isinstance(state, bool) and state in _STATES:
        return state
    value = getattr(state, "value", None)
    if isinstance(value, tuple) and value and value[0] in _STATES:
        return value[0]
    raise TypeError(f"expected a ChannelConnectivity, got {state!r}")


def status_code(code: int) -> StatusCode:
    return _CODES.get(code, StatusCode.UNKNOWN)


def code_int(code: Any) -> int:
    """An int from a StatusCode (ours or grpcio's) or an int 0-16."""
    if isinstance(code, StatusCode):
        return code.value[0]
    if isinstance(code, int) and not isinstance(code, bool):
        if 0 <= code <= 16:
            return code
        raise ValueError(f"status code {code} is outside 0-16")
    value = getattr(code, "value", None)
    if isinstance(value, tuple) and value and isinstance(value[0], int):
        return value[0]
    raise TypeError(f"expected a StatusCode, got {type(code).__name__}")


class Metadatum(collections.namedtuple("Metadatum", ("key", "value"))):
    """One metadata entry: ``key`` str; ``value`` str, or bytes for keys ending in ``-bin``."""
    __slots__ = ()


MetadataType = Sequence[Tuple[str, Union[str, bytes]]]


class RpcError(*_RPC_ERROR_BASES):  # type: ignore[misc]
    """A call ended with a non-OK status. Like grpcio's RpcError (and, when grpcio is
    installed, a subclass of it): ``code()``, ``details()``, ``initial_metadata()``,
    ``trailing_metadata()``."""

    def __init__(self, code: StatusCode, details: str = "",
                 initial_metadata: Tuple[Metadatum, ...] = (),
                 trailing_metadata: Tuple[Metadatum, ...] = ()) -> None:
        super().__init__(f"<RpcError {code.name}: {details!r}>")
        self._code = code
        self._details = details
        self._initial = initial_metadata
        self._trailing = trailing_metadata

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> Tuple[Metadatum, ...]:
        return self._initial

    def trailing_metadata(self) -> Tuple[Metadatum, ...]:
        return self._trailing

    def debug_error_string(self) -> str:
        return f"{self._code.name}: {self._details}"

    # A finished call that failed is also a Call and a Future, as grpcio's _InactiveRpcError
    # (client interceptors get one from their continuation).
    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> Optional[float]:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: Optional[float] = None) -> Any:
        raise self

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        return self

    def traceback(self, timeout: Optional[float] = None) -> Any:
        return self.__traceback__

    def add_done_callback(self, fn: Any) -> None:
        fn(self)

    def __str__(self) -> str:
        return (f"<RpcError of RPC that terminated with:\n\tstatus = {self._code}\n"
                f"\tdetails = \"{self._details}\"\n>")


class UsageError(Exception):
    """The object is closed or stopped, or it was used out of order."""


class BaseError(Exception):
    """grpc.aio.BaseError: the base of AbortError and InternalError."""


class AbortError(BaseError):
    """grpc.aio.AbortError: raised by ServicerContext.abort to unwind the handler (it ends the
    call with the status given to abort)."""


class InternalError(BaseError):
    """grpc.aio.InternalError."""


def raise_native(e: N.NativeError) -> None:
    """Re-raises a NativeError as the Python exception a user expects for it."""
    if e.code in (N.E_INVALID_METADATA, N.E_INVALID_UTF8, N.E_INVALID_ARGUMENT, N.E_TOO_LARGE):
        raise ValueError(e.message) from None
    if e.code in (N.E_BAD_HANDLE, N.E_WRONG_STATE, N.E_SHUTDOWN):
        raise UsageError(e.message) from None
    raise e


# --------------------------------------------------------------------------------------------
# Metadata

_string_at = N.string_at
# A message up to this size is copied out with the rest of its event's block and sliced off
# (two copies of a small message are cheaper than one more foreign call).
_SLICED_MESSAGE = 16384
_MD_SIZE = N.METADATA_LAYOUT.size
_md_iter = N.METADATA_LAYOUT.iter_unpack


def _text(b: bytes) -> str:
    """A metadata value from the wire as grpcio gives it: UTF-8, else Latin-1 (never fails)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("latin-1")


def read_metadata(blk: bytes, base: int, ptr: int, count: int) -> Tuple[Metadatum, ...]:
    """Metadata from a copy `blk` of the event block at address `base` (the array at `ptr`).
    Never raises on what a peer sent: values of non-binary keys that are not ASCII are passed
    through as grpcio does (UTF-8, else Latin-1)."""
    if not count:
        return ()
    out = []
    at = ptr - base
    for kp, kl, vp, vl in _md_iter(blk[at:at + _MD_SIZE * count]):
        k = blk[kp - base:kp - base + kl].decode("latin-1")
        v = blk[vp - base:vp - base + vl]
        out.append(Metadatum(k, v if k.endswith("-bin") else _text(v)))
    return tuple(out)


class RawPairs:
    """(key, value bytes) pairs still in a copy of the event block (the auth properties of a
    call), decoded when first asked for: most handlers never look."""

    __slots__ = ("blk", "base", "ptr", "count")

    def __init__(self, blk: bytes, base: int, ptr: int, count: int) -> None:
        self.blk, self.base, self.ptr, self.count = blk, base, ptr, count

    def decode(self) -> Tuple[Tuple[str, bytes], ...]:
        blk, base, at = self.blk, self.base, self.ptr - self.base
        return tuple((blk[kp - base:kp - base + kl].decode("latin-1"), blk[vp - base:vp - base + vl])
                     for kp, kl, vp, vl in _md_iter(blk[at:at + _MD_SIZE * self.count]))


class RawMetadata:
    """A call's request metadata still in a copy of the event block, decoded (read_metadata)
    when first asked for: most handlers never look."""

    __slots__ = ("blk", "base", "ptr", "count")

    def __init__(self, blk: bytes, base: int, ptr: int, count: int) -> None:
        self.blk, self.base, self.ptr, self.count = blk, base, ptr, count

    def decode(self) -> Tuple[Metadatum, ...]:
        return read_metadata(self.blk, self.base, self.ptr, self.count)


def build_metadata(md: Optional[Any], what: str = "metadata") -> Tuple[Any, int]:
    """(swiftgrpc_metadata array or None, count) from a sequence of (key, value) pairs or a
    mapping. Keys are str; values str, or bytes under keys ending in -bin."""
    if not md:
        return None, 0
    if isinstance(md, collections.abc.Mapping):  # (aio's Metadata is none: it iterates as pairs)
        md = list(md.items())
    try:
        md = list(md)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of (key, value) pairs, "
                        f"got {type(md).__name__}") from None
    arr = (N.Metadata * len(md))()
    for i, pair in enumerate(md):
        try:
            key, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"{what} entry {i} is not a (key, value) pair: {pair!r}") from None
        if isinstance(key, bytes):
            kb = key
        elif isinstance(key, str):
            try:
                kb = key.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError(f"{what} key {key!r} is not ASCII") from None
        else:
            raise TypeError(f"{what} key must be str, got {type(key).__name__}")
        if isinstance(value, str):
            if kb.endswith(b"-bin"):
                vb = value.encode("utf-8")
            else:
                try:
                    vb = value.encode("ascii")
                except UnicodeEncodeError:
                    raise ValueError(f"{what} value of {key!r} is not printable ASCII "
                                     f"(use a -bin key for binary values)") from None
        elif isinstance(value, (bytes, bytearray, memoryview)):
            vb = bytes(value)
        else:
            raise TypeError(f"{what} value of {key!r} must be str or bytes, "
                            f"got {type(value).__name__}")
        e = arr[i]
        e.key = kb
        e.key_len = len(kb)
        e.value = vb
        e.value_len = len(vb)
    return arr, len(md)


def as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes (or give a serializer), got {type(data).__name__}")


# --------------------------------------------------------------------------------------------
# Events

_EV_SIZE = N.EVENT_LAYOUT.size
_ev_unpack = N.EVENT_LAYOUT.unpack
_queue_next = N.swiftgrpc_queue_next
_event_free = N.swiftgrpc_event_free


class Event:
    """A decoded swiftgrpc_event (copied out of library memory, which is freed at once)."""
    __slots__ = ("type", "kind", "token", "server", "method", "peer", "metadata", "deadline_ns",
                 "message", "status_code", "channel", "tag", "status_message", "trailers", "auth",
                 "authority", "compressed")

    def __init__(self, ptr: int) -> None:
        (t, kind, token, server, mp, ml, aup, aul, pp, pl, mdp, mdc, deadline, msgp, msgl,
         has_msg, code, channel, tag, smp, sml, trp, trc, ap, ac, message_flags) = _ev_unpack(
             _string_at(ptr, _EV_SIZE))
        self.type = t
        self.kind = kind
        self.token = token
        self.server = server
        self.channel = channel
        self.tag = tag
        self.deadline_ns = deadline
        self.status_code = code
        self.compressed = message_flags & N.MESSAGE_COMPRESSED != 0  # it came compressed
        if t == N.EVENT_CALL or t == N.EVENT_CREDENTIALS_REQUEST or (
                (t == N.EVENT_CLIENT_STATUS or t == N.EVENT_CLIENT_INITIAL_METADATA)
                and (mdc or trc or sml)):
            # A queued event is one block: the struct, its metadata arrays, every string, the
            # message last. One copy of what precedes the message, sliced, instead of a copy per
            # string; a small message (a unary request) comes in the same copy.
            if has_msg and msgl <= _SLICED_MESSAGE:
                blk = _string_at(ptr, msgp + msgl - ptr)
                self.message = blk[msgp - ptr:]
            else:
                blk = _string_at(ptr, msgp - ptr)
                self.message = _string_at(msgp, msgl) if has_msg else None
            if t == N.EVENT_CALL:
                self.method = blk[mp - ptr:mp - ptr + ml].decode("utf-8", "replace")
                self.peer = blk[pp - ptr:pp - ptr + pl].decode("utf-8", "replace")
                # RawMetadata: decoded by the context when the handler asks for it.
                self.metadata = RawMetadata(blk, ptr, mdp, mdc) if mdc else ()
                self.auth = RawPairs(blk, ptr, ap, ac) if ac else ()
            elif t == N.EVENT_CREDENTIALS_REQUEST:
                self.method = blk[mp - ptr:mp - ptr + ml].decode("utf-8", "replace")
                self.authority = blk[aup - ptr:aup - ptr + aul].decode("utf-8", "replace")
            else:
                self.metadata = read_metadata(blk, ptr, mdp, mdc)
                self.trailers = read_metadata(blk, ptr, trp, trc)
                self.status_message = blk[smp - ptr:smp - ptr + sml].decode("utf-8", "replace")
        else:
            self.message = _string_at(msgp, msgl) if has_msg else None
            if t == N.EVENT_CLIENT_STATUS or t == N.EVENT_CLIENT_INITIAL_METADATA:
                # No metadata, trailers or message text (the common OK answer): nothing to copy.
                self.metadata = self.trailers = ()
                self.status_message = ""

    @classmethod
    def local_status(cls, code: int, message: str) -> "Event":
        """A CLIENT_STATUS the binding itself decides (a call cancelled by the application),
        as grpcio reports it at once instead of waiting for the library's."""
        ev = cls.__new__(cls)
        ev.type = N.EVENT_CLIENT_STATUS
        ev.kind = ev.token = ev.server = ev.channel = ev.tag = ev.deadline_ns = 0
        ev.status_code = code
        ev.status_message = message
        ev.message = None
        ev.compressed = False
        ev.metadata = ev.trailers = ()
        return ev


def next_event(queue: int, timeout_ms: int) -> Union[Event, int]:
    """The next event of `queue`, or the negative result (E_TIMEOUT, E_SHUTDOWN, ...)."""
    p = ctypes.c_void_p()
    rc = _queue_next(queue, timeout_ms, ctypes.byref(p))
    if rc < 0:
        return rc
    try:
        return Event(p.value)  # type: ignore[arg-type]
    finally:
        _event_free(p)


_queue_next_batch = N.swiftgrpc_queue_next_batch
_queue_poll_batch = N.swiftgrpc_queue_poll_batch


class Batches:
    """Takes events from one queue a batch at a time (swiftgrpc_queue_next_batch: one call and
    one wake-up per batch). For one thread at a time: the slots are reused."""

    def __init__(self, queue: int, size: int = 256, poll: bool = False) -> None:
        """`poll`: every take has a timeout of 0 and keeps the GIL."""
        self.queue = queue
        self._take = _queue_poll_batch if poll else _queue_next_batch
        self.slots = (ctypes.c_void_p * size)()
        self.size = size
        self.count = ctypes.c_size_t()
        self._count_ref = ctypes.byref(self.count)

    def next(self, timeout_ms: int) -> Union[List["Event"], int]:
        """The next events (at least one), or the negative result (E_TIMEOUT, E_SHUTDOWN, ...).
        An event that cannot be decoded is logged and skipped; every one is freed."""
        rc = self._take(self.queue, timeout_ms, self.slots, self.size, self._count_ref)
        if rc < 0:
            return rc
        out = []
        slots = self.slots
        for i in range(self.count.value):
            p = slots[i]
            try:
                out.append(Event(p))  # type: ignore[arg-type]
            except Exception:  # never lose the rest of the batch, never kill the thread
                logging.getLogger("swiftgrpc").exception("swiftgrpc: an event could not be decoded")
            finally:
                _event_free(p)
        return out


# --------------------------------------------------------------------------------------------
# The process-wide runtime

class Runtime:
    """One libswiftgrpc runtime (its event-loop threads) shared by every server and channel of
    the process; destroyed at interpreter exit after them."""

    def __init__(self, loop_threads: int = 0) -> None:
        h = N.H()
        N.check(N.swiftgrpc_runtime_create(loop_threads, ctypes.byref(h)), "swiftgrpc_runtime_create")
        self.handle = h.value
        self._queues: List[int] = []
        self._owners: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self.closed = False
        self.forked = False  # the parent's runtime, in a forked child

    def new_queue(self) -> int:
        if self.forked:
            raise UsageError(f"this object was {FORKED_MESSAGE}")
        h = N.H()
        N.check(N.swiftgrpc_queue_create(self.handle, ctypes.byref(h)), "swiftgrpc_queue_create")
        return h.value

    def take_queue(self) -> int:
        """A drained event queue from the pool (for one client call at a time)."""
        try:
            return self._queues.pop()
        except IndexError:
            return self.new_queue()

    def give_queue(self, q: int) -> None:
        if len(self._queues) < 256 and not self.closed:
            self._queues.append(q)
        else:
            N.swiftgrpc_queue_destroy(q)

    def adopt(self, owner: Any) -> None:
        """Registers a server or channel to close (its `_close_at_exit`) before the runtime."""
        with self._lock:
            self._owners.add(owner)

    def destroy(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            owners = list(self._owners)
        for o in owners:
            try:
                o._close_at_exit()
            except Exception:  # exit must go on
                pass
        N.swiftgrpc_runtime_destroy(self.handle)
        for q in self._queues:
            N.swiftgrpc_queue_destroy(q)
        self._queues.clear()


_runtime: Optional[Runtime] = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    r = _runtime
    if r is not None:
        return r
    with _runtime_lock:
        if _runtime is None:
            threads = int(os.environ.get("SWIFTGRPC_LOOP_THREADS", "0"))
            _runtime = Runtime(threads)
        return _runtime


def _after_fork_in_child() -> None:
    """os.fork()'s child: the library abandoned the parent's runtime (its threads are not here,
    its handles now refused); so do we. The next server or channel makes a new runtime; the
    objects made before fork() are told, and never torn down here (that is the parent's)."""
    global _runtime, _runtime_lock
    old, _runtime = _runtime, None
    _runtime_lock = threading.Lock()
    if old is None:
        return
    old.closed = old.forked = True  # never destroyed in the child
    old._lock = threading.Lock()
    old._queues = []
    for owner in list(old._owners):
        forget = getattr(owner, "_forget_after_fork", None)
        if forget is not None:
            try:
                forget()
            except Exception:
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

FORKED_MESSAGE = "created before fork(): a forked child makes its own servers and channels"


@atexit.register
def _destroy_runtime() -> None:
    r = _runtime
    if r is not None:
        r.destroy()


def deadline_from_timeout(timeout: Optional[float]) -> int:
    """An absolute swiftgrpc_now_ns() deadline from a timeout in seconds (None: none)."""
    if timeout is None or timeout == float("inf"):
        return N.DEADLINE_NONE
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if timeout != timeout:
        raise ValueError("timeout is NaN")
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    ns = timeout * 1e9
    if ns >= N.DEADLINE_NONE:  # centuries: the library saturates the sum; keep it finite here
        return N.DEADLINE_NONE - 1
    return min(N.DEADLINE_NONE - 1, N.now_ns() + int(ns))


class Pump:
    """A daemon thread that drains `queue` in batches and hands each batch (a list of Event) to
    `on_batch` — the bridge from the library's pull queue to threads or asyncio loops."""

    def __init__(self, queue: int, on_batch: Any, name: str) -> None:
        self.queue = queue
        self.on_batch = on_batch
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        take = Batches(self.queue).next
        on_batch = self.on_batch
        while True:
            batch = take(-1)
            if isinstance(batch, int):
                if batch == N.E_TIMEOUT:
                    continue
                return  # shut down (or destroyed)
            if not batch:
                continue
            try:
                on_batch(batch)
            except Exception:  # a broken consumer must not kill the pump
                import traceback
                traceback.print_exc()
