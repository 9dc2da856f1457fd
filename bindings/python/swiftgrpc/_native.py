"""The raw layer: libswiftgrpc.so loaded with ctypes, every C function of include/swiftgrpc.h
declared once (its prototype in the comment above it), argtypes and restype set once.

Nothing here knows gRPC; the idiomatic API lives in the other modules. Library discovery:
the SWIFTGRPC_LIBRARY environment variable, then the copy bundled inside this package, then the
build tree of a source checkout (build/ by CMake, .build/release by SwiftPM). The library's
version must equal the one this binding was written for.
"""
from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
import threading
import time
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int32, c_int64, c_size_t,
                    c_uint32, c_uint64, c_void_p)
from typing import List, Optional

# The ABI version this binding speaks (SWIFTGRPC_VERSION_NUMBER of include/swiftgrpc.h).
VERSION_NUMBER = 9000
VERSION_STRING = "0.9.0"

OK = 0
E_NULL_ARGUMENT = -1
E_BAD_HANDLE = -2
E_INVALID_ARGUMENT = -3
E_INVALID_METADATA = -4
E_INVALID_UTF8 = -5
E_WRONG_STATE = -6
E_UNKNOWN_TOKEN = -7
E_TOKEN_CLOSED = -8
E_ALREADY_COMPLETED = -9
E_ALREADY_EXISTS = -10
E_SYSTEM = -11
E_TOO_LARGE = -12
E_RECURSIVE_CALL = -13
E_TIMEOUT = -14
E_SHUTDOWN = -15
E_NO_MEMORY = -16

KIND_UNARY = 0
KIND_SERVER_STREAMING = 1
KIND_CLIENT_STREAMING = 2
KIND_BIDI_STREAMING = 3

EVENT_CALL = 1
EVENT_MESSAGE = 2
EVENT_HALF_CLOSE = 3
EVENT_CANCELLED = 4
EVENT_CLIENT_INITIAL_METADATA = 5
EVENT_CLIENT_MESSAGE = 6
EVENT_CLIENT_SEND_DONE = 7
EVENT_CLIENT_STATUS = 8
EVENT_SEND_DONE = 9
EVENT_CREDENTIALS_REQUEST = 10
EVENT_CREDENTIALS_FETCH = 11
EVENT_SERVER_SHUTDOWN = 12

CLIENT_AUTH_NONE = 0
CLIENT_AUTH_REQUEST = 1
CLIENT_AUTH_REQUIRE = 2

OPT_MAX_RECV_MESSAGE_SIZE = 1
OPT_MAX_SEND_MESSAGE_SIZE = 2
OPT_MAX_CONCURRENT_STREAMS = 3
OPT_MAX_METADATA_SIZE = 4
OPT_HANDSHAKE_TIMEOUT_MS = 5
OPT_MAX_CONTROL_FRAMES_PER_SECOND = 6
OPT_DEFAULT_COMPRESSION = 7
OPT_KEEPALIVE_TIME_MS = 8
OPT_KEEPALIVE_TIMEOUT_MS = 9
OPT_KEEPALIVE_PERMIT_WITHOUT_CALLS = 10
OPT_MIN_PING_INTERVAL_WITHOUT_DATA_MS = 11
OPT_MAX_PING_STRIKES = 12
OPT_MAX_CONNECTION_IDLE_MS = 13
OPT_MAX_CONNECTION_AGE_MS = 14
OPT_MAX_CONNECTION_AGE_GRACE_MS = 15
OPT_SO_REUSEPORT = 16
OPT_MAX_CONCURRENT_CALLS = 17

COMPRESS_NONE = 0
COMPRESS_DEFLATE = 1
COMPRESS_GZIP = 2
WRITE_NO_COMPRESS = 1
MESSAGE_COMPRESSED = 1

CHANNEL_CONNECT_TIMEOUT_MS = 1
CHANNEL_INITIAL_BACKOFF_MS = 2
CHANNEL_MAX_BACKOFF_MS = 3
CHANNEL_KEEPALIVE_TIME_MS = 4
CHANNEL_KEEPALIVE_TIMEOUT_MS = 5
CHANNEL_KEEPALIVE_PERMIT_WITHOUT_CALLS = 6
CHANNEL_MAX_SEND_MESSAGE_SIZE = 7
CHANNEL_MAX_RECV_MESSAGE_SIZE = 8
CHANNEL_DEFAULT_TIMEOUT_MS = 9
CHANNEL_USER_AGENT = 10
CHANNEL_LB_POLICY = 11
CHANNEL_AUTHORITY = 12
CHANNEL_MAX_METADATA_SIZE = 13
CHANNEL_DEFAULT_COMPRESSION = 14
CHANNEL_MIN_TIME_BETWEEN_RESOLUTIONS_MS = 15
LB_PICK_FIRST = 0
LB_ROUND_ROBIN = 1

STATE_IDLE = 0
STATE_CONNECTING = 1
STATE_READY = 2
STATE_TRANSIENT_FAILURE = 3
STATE_SHUTDOWN = 4

CALL_WAIT_FOR_READY = 1
CALL_COMPRESS_NONE = 2
CALL_COMPRESS_DEFLATE = 4
CALL_COMPRESS_GZIP = 8
DEADLINE_DEFAULT = 0
DEADLINE_NONE = (1 << 63) - 1


class Metadata(Structure):
    # typedef struct swiftgrpc_metadata { const char *key; size_t key_len;
    #                                     const char *value; size_t value_len; }
    _fields_ = [("key", c_char_p), ("key_len", c_size_t),
                ("value", c_char_p), ("value_len", c_size_t)]


class ChannelArg(Structure):
    # typedef struct swiftgrpc_channel_arg { int32_t key; int64_t int_value;
    #                                        const char *string_value; }
    _fields_ = [("key", c_int32), ("int_value", c_int64), ("string_value", c_char_p)]


class Event(Structure):
    # typedef struct swiftgrpc_event { ... } — see include/swiftgrpc.h. Char pointers are
    # c_void_p so that ctypes never converts them implicitly; read them with string_at.
    _fields_ = [
        ("type", c_int32), ("kind", c_int32), ("token", c_uint64), ("server", c_uint64),
        ("method", c_void_p), ("method_len", c_size_t),
        ("authority", c_void_p), ("authority_len", c_size_t),
        ("peer", c_void_p), ("peer_len", c_size_t),
        ("metadata", c_void_p), ("metadata_count", c_size_t),
        ("deadline_ns", c_int64),
        ("message", c_void_p), ("message_len", c_size_t),
        ("has_message", c_int32), ("status_code", c_int32),
        ("channel", c_uint64), ("tag", c_void_p),
        ("status_message", c_void_p), ("status_message_len", c_size_t),
        ("trailers", c_void_p), ("trailer_count", c_size_t),
        ("auth", c_void_p), ("auth_count", c_size_t),
        ("message_flags", c_uint32),
    ]


class TlsIdentity(Structure):
    # typedef struct swiftgrpc_tls_identity { const char *certificate_chain;
    #   size_t certificate_chain_len; const char *private_key; size_t private_key_len; }
    _fields_ = [("certificate_chain", c_char_p), ("certificate_chain_len", c_size_t),
                ("private_key", c_char_p), ("private_key_len", c_size_t)]


# The same layout for struct.unpack_from: one C call copies an event, one unpack reads it all.
EVENT_LAYOUT = struct.Struct("@iiQQPNPNPNPNqPNiiQPPNPNPNI4x")
METADATA_LAYOUT = struct.Struct("@PNPN")
assert EVENT_LAYOUT.size == ctypes.sizeof(Event), "swiftgrpc_event layout mismatch"
assert METADATA_LAYOUT.size == ctypes.sizeof(Metadata)

# typedef void (*swiftgrpc_host_fn)(const swiftgrpc_event *event, void *user_data);
HOST_FN = CFUNCTYPE(None, POINTER(Event), c_void_p)
# typedef void (*swiftgrpc_host_batch_fn)(const swiftgrpc_event *const *events, size_t count,
#                                         void *user_data);
HOST_BATCH_FN = CFUNCTYPE(None, POINTER(POINTER(Event)), c_size_t, c_void_p)

# A ctypes callback on a thread Python did not start (a loop thread) makes a Python thread state
# for the call and destroys it on return: most of the callback's cost. host_fn keeps it: the
# first call on each thread takes one more PyGILState_Ensure, never released, so the state
# lives as long as the thread (CPython; elsewhere host_fn is HOST_FN).
_gil_ensure = getattr(getattr(ctypes, "pythonapi", None), "PyGILState_Ensure", None)
_pinned_threads: set = set()


def _pinning(fn):
    """`fn`, first making sure its thread's Python thread state outlives the call."""
    if _gil_ensure is None:
        return fn
    pinned, ensure, ident = _pinned_threads, _gil_ensure, threading.get_ident

    def call(*args):
        if ident() not in pinned:
            pinned.add(ident())
            ensure()
        fn(*args)
    return call


def host_fn(fn) -> "HOST_FN":
    """A swiftgrpc_host_fn calling `fn(event_pointer, user_data)`, for functions the library
    calls on its loop threads. Keep the returned object referenced while the library may call
    it. About 3-4 µs per call instead of 11 µs for a plain HOST_FN."""
    return HOST_FN(_pinning(fn))


def host_batch_fn(fn) -> "HOST_BATCH_FN":
    """A swiftgrpc_host_batch_fn calling `fn(events, count, user_data)` (`events[i]` a pointer
    to an Event), with the thread state kept as host_fn does."""
    return HOST_BATCH_FN(_pinning(fn))


class CallArgs(Structure):
    # typedef struct swiftgrpc_call_args { uint32_t struct_size; const char *method; int kind;
    #   const swiftgrpc_metadata *metadata; size_t metadata_count; const void *message;
    #   size_t message_len; int64_t deadline_ns; uint32_t flags; swiftgrpc_queue queue;
    #   swiftgrpc_host_fn fn; void *tag; swiftgrpc_call_credentials credentials; }
    _fields_ = [("struct_size", c_uint32), ("method", c_char_p), ("kind", c_int),
                ("metadata", POINTER(Metadata)), ("metadata_count", c_size_t),
                ("message", c_char_p), ("message_len", c_size_t), ("deadline_ns", c_int64),
                ("flags", c_uint32), ("queue", c_uint64), ("fn", HOST_FN), ("tag", c_void_p),
                ("credentials", c_uint64)]


class LibraryNotFound(ImportError):
    """libswiftgrpc.so could not be found or loaded, or its version does not match."""


def _candidates() -> List[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    env = os.environ.get("SWIFTGRPC_LIBRARY")
    if env:
        return [env]  # an explicit choice is not second-guessed
    out.append(os.path.join(here, "libswiftgrpc.so"))
    root = os.path.dirname(os.path.dirname(os.path.dirname(here)))  # bindings/python/swiftgrpc
    out.append(os.path.join(root, "build", "libswiftgrpc.so"))
    out.append(os.path.join(root, ".build", "release", "libswiftgrpc.so"))
    return out


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        if not os.path.exists(path):
            tried.append(f"{path} (missing)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise LibraryNotFound(f"cannot load {path}: {e}") from e
        lib.swiftgrpc_version_number.restype = c_int
        lib.swiftgrpc_version_number.argtypes = []
        found = lib.swiftgrpc_version_number()
        if found != VERSION_NUMBER:
            raise LibraryNotFound(
                f"{path} is libswiftgrpc version number {found}, but this binding needs "
                f"{VERSION_NUMBER} ({VERSION_STRING}); rebuild the library or reinstall the binding")
        lib._swiftgrpc_path = path  # type: ignore[attr-defined]
        return lib
    raise LibraryNotFound("libswiftgrpc.so not found; set SWIFTGRPC_LIBRARY. Tried: "
                          + "; ".join(tried))


lib = _load()
library_path: str = lib._swiftgrpc_path  # type: ignore[attr-defined]
# The same library through PyDLL: calls keep the GIL. Used for the functions that never wait
# (they enqueue and return in microseconds): releasing and re-taking the GIL around each of them
# costs more than the call, and hands the interpreter to another thread on every answer.
# Functions that can wait (queue_next, shutdown, destroy, wait_state_change) use `lib`, which
# releases the GIL. No Python callback is ever run by the library while the GIL is held here:
# the idiomatic layer pulls events from queues and registers no host functions.
# PyPy has no PyDLL (and no GIL to keep around a foreign call): `lib` serves for all there.
_gil_lib = ctypes.PyDLL(library_path) if hasattr(ctypes, "PyDLL") else lib


# The integer arguments of the functions every RPC goes through (handles, tokens, lengths,
# counts, codes, flags: `per_call`) are declared c_void_p where that passes the same bits. In
# CPython, c_uint64's and c_int's from_param first run isinstance through ctypes' metaclass; a
# c_void_p takes an int in a quarter of the work (about 1,050 against 260 instructions, measured
# with callgrind: 9 % of a Python server's instructions per call went there). Where every integer argument travels in a whole
# 64-bit register or stack slot and a narrower one is read from its low bits — the System V
# x86-64 and AAPCS64 calling conventions, on Linux and the BSDs (not on Apple's arm64, which
# packs stack arguments) — the callee reads the same value either way. Elsewhere, and under PyPy
# (whose ctypes has no such cost), the exact types.
_WORD_ARGS = (sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))
              and platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")
              and ctypes.sizeof(c_void_p) == 8 and sys.implementation.name == "cpython")
_INTEGERS = (c_int, c_int32, c_int64, c_size_t, c_uint32, c_uint64)


def _fn(name: str, restype, *argtypes, waits: bool = False, per_call: bool = False):
    f = getattr(lib if waits else _gil_lib, name)
    f.restype = restype
    if per_call and _WORD_ARGS:
        argtypes = tuple(c_void_p if t in _INTEGERS else t for t in argtypes)
    f.argtypes = list(argtypes)
    return f


# ctypes.string_at(address, size): a Python function around a ctypes prototype with a c_int
# size. The same C function with both arguments converted as words (see _WORD_ARGS), called
# directly: it copies every event out of library memory, several times per RPC.
string_at = ctypes.string_at
if _WORD_ARGS and hasattr(ctypes, "_string_at_addr"):
    string_at = ctypes.PYFUNCTYPE(ctypes.py_object, c_void_p, c_void_p)(
        ctypes._string_at_addr)  # type: ignore[attr-defined]


H = c_uint64  # every handle type (runtime, server, queue, channel, call) is a uint64_t

# const char *swiftgrpc_version_string(void);
swiftgrpc_version_string = _fn("swiftgrpc_version_string", c_char_p)
# int swiftgrpc_version_number(void);
swiftgrpc_version_number = _fn("swiftgrpc_version_number", c_int)
# const char *swiftgrpc_errstr(int code);
swiftgrpc_errstr = _fn("swiftgrpc_errstr", c_char_p, c_int)
# const char *swiftgrpc_last_error(void);
swiftgrpc_last_error = _fn("swiftgrpc_last_error", c_char_p)
# int swiftgrpc_runtime_create(uint32_t loop_threads, swiftgrpc_runtime *out);
swiftgrpc_runtime_create = _fn("swiftgrpc_runtime_create", c_int, c_uint32, POINTER(H), waits=True)
# int swiftgrpc_runtime_destroy(swiftgrpc_runtime runtime);
swiftgrpc_runtime_destroy = _fn("swiftgrpc_runtime_destroy", c_int, H, waits=True)
# int64_t swiftgrpc_now_ns(void);
swiftgrpc_now_ns = _fn("swiftgrpc_now_ns", c_int64)
# int swiftgrpc_queue_create(swiftgrpc_runtime runtime, swiftgrpc_queue *out);
swiftgrpc_queue_create = _fn("swiftgrpc_queue_create", c_int, H, POINTER(H))
# int swiftgrpc_queue_next(swiftgrpc_queue queue, int64_t timeout_ms, swiftgrpc_event **out);
swiftgrpc_queue_next = _fn("swiftgrpc_queue_next", c_int, H, c_int64, POINTER(c_void_p), waits=True,
                           per_call=True)
# int swiftgrpc_queue_next_batch(swiftgrpc_queue queue, int64_t timeout_ms, swiftgrpc_event **out,
#                                size_t max, size_t *out_count);
swiftgrpc_queue_next_batch = _fn("swiftgrpc_queue_next_batch", c_int, H, c_int64, POINTER(c_void_p),
                                 c_size_t, POINTER(c_size_t), waits=True, per_call=True)
# The same with a timeout of 0, which never waits: keeps the GIL (an event loop's own thread
# drains a queue with it when swiftgrpc_queue_fd is readable).
swiftgrpc_queue_poll_batch = _fn("swiftgrpc_queue_next_batch", c_int, H, c_int64, POINTER(c_void_p),
                                 c_size_t, POINTER(c_size_t), per_call=True)
# int swiftgrpc_queue_fd(swiftgrpc_queue queue, int *out);
swiftgrpc_queue_fd = _fn("swiftgrpc_queue_fd", c_int, H, POINTER(c_int))
# int swiftgrpc_queue_shutdown(swiftgrpc_queue queue);
swiftgrpc_queue_shutdown = _fn("swiftgrpc_queue_shutdown", c_int, H)
# int swiftgrpc_queue_destroy(swiftgrpc_queue queue);
swiftgrpc_queue_destroy = _fn("swiftgrpc_queue_destroy", c_int, H, waits=True)
# void swiftgrpc_event_free(swiftgrpc_event *event);
swiftgrpc_event_free = _fn("swiftgrpc_event_free", None, c_void_p)
# int swiftgrpc_server_create(swiftgrpc_runtime runtime, swiftgrpc_server *out);
swiftgrpc_server_create = _fn("swiftgrpc_server_create", c_int, H, POINTER(H))
# int swiftgrpc_server_set_option(swiftgrpc_server server, int option, int64_t value);
swiftgrpc_server_set_option = _fn("swiftgrpc_server_set_option", c_int, H, c_int, c_int64)
# int swiftgrpc_register_host_fn(swiftgrpc_server server, const char *method, int kind,
#                                swiftgrpc_host_fn fn, void *user_data);
swiftgrpc_register_host_fn = _fn("swiftgrpc_register_host_fn", c_int, H, c_char_p, c_int,
                                 HOST_FN, c_void_p, waits=True)
# int swiftgrpc_register_host_batch_fn(swiftgrpc_server server, const char *method, int kind,
#                                      swiftgrpc_host_batch_fn fn, void *user_data);
swiftgrpc_register_host_batch_fn = _fn("swiftgrpc_register_host_batch_fn", c_int, H, c_char_p, c_int,
                                       HOST_BATCH_FN, c_void_p, waits=True)
# int swiftgrpc_register_host_queue(swiftgrpc_server server, const char *method, int kind,
#                                   swiftgrpc_queue queue);
swiftgrpc_register_host_queue = _fn("swiftgrpc_register_host_queue", c_int, H, c_char_p, c_int, H)
HEALTH_UNKNOWN = 0
HEALTH_SERVING = 1
HEALTH_NOT_SERVING = 2
HEALTH_SERVICE_UNKNOWN = 3
# int swiftgrpc_server_enable_health(swiftgrpc_server server);
swiftgrpc_server_enable_health = _fn("swiftgrpc_server_enable_health", c_int, H)
# int swiftgrpc_server_set_health(swiftgrpc_server server, const char *service, int status);
swiftgrpc_server_set_health = _fn("swiftgrpc_server_set_health", c_int, H, c_char_p, c_int)
# int swiftgrpc_server_listen(swiftgrpc_server server, const char *address, int *bound_port);
swiftgrpc_server_listen = _fn("swiftgrpc_server_listen", c_int, H, c_char_p, POINTER(c_int))
# int swiftgrpc_server_start(swiftgrpc_server server);
swiftgrpc_server_start = _fn("swiftgrpc_server_start", c_int, H)
# int swiftgrpc_server_shutdown(swiftgrpc_server server, int64_t grace_ms);
swiftgrpc_server_shutdown = _fn("swiftgrpc_server_shutdown", c_int, H, c_int64, waits=True)
# int swiftgrpc_server_shutdown_notify(swiftgrpc_server server, int64_t grace_ms,
#                                      swiftgrpc_queue queue, void *tag);
swiftgrpc_server_shutdown_notify = _fn("swiftgrpc_server_shutdown_notify", c_int, H, c_int64, H, c_void_p)
# int swiftgrpc_server_destroy(swiftgrpc_server server);
swiftgrpc_server_destroy = _fn("swiftgrpc_server_destroy", c_int, H, waits=True)
# int swiftgrpc_server_probe(swiftgrpc_server server, const char *method, const void *message,
#                            size_t message_len, uint64_t iterations, int64_t timeout_ms,
#                            int64_t *out_elapsed_ns);
swiftgrpc_server_probe = _fn("swiftgrpc_server_probe", c_int, H, c_char_p, c_void_p, c_size_t, c_uint64,
                             c_int64, POINTER(c_int64), waits=True)
# int swiftgrpc_call_send_initial_metadata(swiftgrpc_server server, uint64_t token,
#                                          const swiftgrpc_metadata *metadata, size_t count);
swiftgrpc_call_send_initial_metadata = _fn("swiftgrpc_call_send_initial_metadata", c_int, H,
                                           c_uint64, POINTER(Metadata), c_size_t)
# int swiftgrpc_call_send_message(swiftgrpc_server server, uint64_t token, const void *data,
#                                 size_t len);
swiftgrpc_call_send_message = _fn("swiftgrpc_call_send_message", c_int, H, c_uint64, c_char_p,
                                  c_size_t, per_call=True)
# int swiftgrpc_call_send_message_v2(swiftgrpc_server server, uint64_t token, const void *data,
#                                    size_t len, uint32_t flags);
swiftgrpc_call_send_message_v2 = _fn("swiftgrpc_call_send_message_v2", c_int, H, c_uint64, c_char_p,
                                     c_size_t, c_uint32, per_call=True)
# int swiftgrpc_call_set_compression(swiftgrpc_server server, uint64_t token, int algorithm);
swiftgrpc_call_set_compression = _fn("swiftgrpc_call_set_compression", c_int, H, c_uint64, c_int)
# int swiftgrpc_call_set_tag(swiftgrpc_server server, uint64_t token, void *tag);
swiftgrpc_call_set_tag = _fn("swiftgrpc_call_set_tag", c_int, H, c_uint64, c_void_p, per_call=True)
# int swiftgrpc_call_read(swiftgrpc_server server, uint64_t token);
swiftgrpc_call_read = _fn("swiftgrpc_call_read", c_int, H, c_uint64, per_call=True)
# int swiftgrpc_host_complete(swiftgrpc_server server, uint64_t token, const void *message,
#                             size_t message_len, int status_code, const char *status_message,
#                             const swiftgrpc_metadata *trailers, size_t trailer_count);
swiftgrpc_host_complete = _fn("swiftgrpc_host_complete", c_int, H, c_uint64, c_char_p, c_size_t,
                              c_int, c_char_p, POINTER(Metadata), c_size_t, per_call=True)
# int swiftgrpc_channel_create(swiftgrpc_runtime runtime, const char *target,
#                              const swiftgrpc_channel_arg *args, size_t arg_count,
#                              swiftgrpc_channel *out);
swiftgrpc_channel_create = _fn("swiftgrpc_channel_create", c_int, H, c_char_p, POINTER(ChannelArg),
                               c_size_t, POINTER(H))
# int swiftgrpc_channel_state(swiftgrpc_channel channel, int try_to_connect, int *out_state);
swiftgrpc_channel_state = _fn("swiftgrpc_channel_state", c_int, H, c_int, POINTER(c_int))
# int swiftgrpc_channel_wait_state_change(swiftgrpc_channel channel, int last_state,
#                                         int64_t timeout_ms, int *out_state);
swiftgrpc_channel_wait_state_change = _fn("swiftgrpc_channel_wait_state_change", c_int, H, c_int,
                                          c_int64, POINTER(c_int), waits=True)
# int swiftgrpc_channel_close(swiftgrpc_channel channel);
swiftgrpc_channel_close = _fn("swiftgrpc_channel_close", c_int, H)
# int swiftgrpc_channel_destroy(swiftgrpc_channel channel);
swiftgrpc_channel_destroy = _fn("swiftgrpc_channel_destroy", c_int, H, waits=True)
# int swiftgrpc_client_call_start(swiftgrpc_channel channel, const char *method, int kind,
#                                 const swiftgrpc_metadata *metadata, size_t metadata_count,
#                                 const void *message, size_t message_len, int64_t deadline_ns,
#                                 uint32_t flags, swiftgrpc_queue queue, swiftgrpc_host_fn fn,
#                                 void *tag, swiftgrpc_call *out);
swiftgrpc_client_call_start = _fn("swiftgrpc_client_call_start", c_int, H, c_char_p, c_int,
                                  POINTER(Metadata), c_size_t, c_char_p, c_size_t, c_int64,
                                  c_uint32, H, HOST_FN, c_void_p, POINTER(H), per_call=True)
# int swiftgrpc_client_send_message(swiftgrpc_channel channel, swiftgrpc_call call,
#                                   const void *data, size_t len);
swiftgrpc_client_send_message = _fn("swiftgrpc_client_send_message", c_int, H, H, c_char_p,
                                    c_size_t, per_call=True)
# int swiftgrpc_client_send_message_v2(swiftgrpc_channel channel, swiftgrpc_call call,
#                                      const void *data, size_t len, uint32_t flags);
swiftgrpc_client_send_message_v2 = _fn("swiftgrpc_client_send_message_v2", c_int, H, H, c_char_p,
                                       c_size_t, c_uint32, per_call=True)
# int swiftgrpc_client_half_close(swiftgrpc_channel channel, swiftgrpc_call call);
swiftgrpc_client_half_close = _fn("swiftgrpc_client_half_close", c_int, H, H, per_call=True)
# int swiftgrpc_client_read(swiftgrpc_channel channel, swiftgrpc_call call);
swiftgrpc_client_read = _fn("swiftgrpc_client_read", c_int, H, H, per_call=True)
# int swiftgrpc_client_cancel(swiftgrpc_channel channel, swiftgrpc_call call);
swiftgrpc_client_cancel = _fn("swiftgrpc_client_cancel", c_int, H, H, per_call=True)

# int swiftgrpc_client_call_start_v2(swiftgrpc_channel channel, const swiftgrpc_call_args *args,
#                                    swiftgrpc_call *out);
swiftgrpc_client_call_start_v2 = _fn("swiftgrpc_client_call_start_v2", c_int, H, POINTER(CallArgs),
                                     POINTER(H), per_call=True)

# int swiftgrpc_server_credentials_create(const swiftgrpc_tls_identity *identities, size_t count,
#                                         const char *client_roots, size_t client_roots_len,
#                                         int client_auth, swiftgrpc_server_credentials *out);
swiftgrpc_server_credentials_create = _fn("swiftgrpc_server_credentials_create", c_int,
                                          POINTER(TlsIdentity), c_size_t, c_char_p, c_size_t, c_int,
                                          POINTER(H))
# int swiftgrpc_server_credentials_update(swiftgrpc_server_credentials credentials,
#                                         const swiftgrpc_tls_identity *identities, size_t count,
#                                         const char *client_roots, size_t client_roots_len,
#                                         int client_auth);
swiftgrpc_server_credentials_update = _fn("swiftgrpc_server_credentials_update", c_int, H,
                                          POINTER(TlsIdentity), c_size_t, c_char_p, c_size_t, c_int)
# int swiftgrpc_server_credentials_set_fetcher(swiftgrpc_server_credentials credentials,
#                                              swiftgrpc_host_fn fn, void *user_data);
swiftgrpc_server_credentials_set_fetcher = _fn("swiftgrpc_server_credentials_set_fetcher", c_int, H,
                                               HOST_FN, c_void_p)
# int swiftgrpc_server_credentials_destroy(swiftgrpc_server_credentials credentials);
swiftgrpc_server_credentials_destroy = _fn("swiftgrpc_server_credentials_destroy", c_int, H)
# int swiftgrpc_server_listen_secure(swiftgrpc_server server, const char *address,
#                                    swiftgrpc_server_credentials credentials, int *bound_port);
swiftgrpc_server_listen_secure = _fn("swiftgrpc_server_listen_secure", c_int, H, c_char_p, H,
                                     POINTER(c_int))
# int swiftgrpc_channel_credentials_create(const char *roots, size_t roots_len,
#                                          const swiftgrpc_tls_identity *identity,
#                                          const char *server_name_override,
#                                          swiftgrpc_channel_credentials *out);
swiftgrpc_channel_credentials_create = _fn("swiftgrpc_channel_credentials_create", c_int, c_char_p,
                                           c_size_t, POINTER(TlsIdentity), c_char_p, POINTER(H))
# int swiftgrpc_channel_credentials_destroy(swiftgrpc_channel_credentials credentials);
swiftgrpc_channel_credentials_destroy = _fn("swiftgrpc_channel_credentials_destroy", c_int, H)
# int swiftgrpc_channel_create_secure(swiftgrpc_runtime runtime, const char *target,
#                                     swiftgrpc_channel_credentials credentials,
#                                     const swiftgrpc_channel_arg *args, size_t arg_count,
#                                     swiftgrpc_channel *out);
swiftgrpc_channel_create_secure = _fn("swiftgrpc_channel_create_secure", c_int, H, c_char_p, H,
                                      POINTER(ChannelArg), c_size_t, POINTER(H))
# int swiftgrpc_call_credentials_create_access_token(const char *token,
#                                                    swiftgrpc_call_credentials *out);
swiftgrpc_call_credentials_create_access_token = _fn("swiftgrpc_call_credentials_create_access_token",
                                                     c_int, c_char_p, POINTER(H))
# int swiftgrpc_call_credentials_create_plugin(swiftgrpc_queue queue, swiftgrpc_host_fn fn,
#                                              void *user_data, swiftgrpc_call_credentials *out);
swiftgrpc_call_credentials_create_plugin = _fn("swiftgrpc_call_credentials_create_plugin", c_int, H,
                                               HOST_FN, c_void_p, POINTER(H))
# int swiftgrpc_call_credentials_answer(uint64_t request, const swiftgrpc_metadata *metadata,
#                                       size_t count, int status_code, const char *status_message);
swiftgrpc_call_credentials_answer = _fn("swiftgrpc_call_credentials_answer", c_int, c_uint64,
                                        POINTER(Metadata), c_size_t, c_int, c_char_p)
# int swiftgrpc_call_credentials_compose(swiftgrpc_call_credentials a, swiftgrpc_call_credentials b,
#                                        swiftgrpc_call_credentials *out);
swiftgrpc_call_credentials_compose = _fn("swiftgrpc_call_credentials_compose", c_int, H, H, POINTER(H))
# int swiftgrpc_call_credentials_destroy(swiftgrpc_call_credentials credentials);
swiftgrpc_call_credentials_destroy = _fn("swiftgrpc_call_credentials_destroy", c_int, H)
# int swiftgrpc_channel_credentials_compose(swiftgrpc_channel_credentials channel_credentials,
#                                           swiftgrpc_call_credentials call_credentials,
#                                           swiftgrpc_channel_credentials *out);
swiftgrpc_channel_credentials_compose = _fn("swiftgrpc_channel_credentials_compose", c_int, H, H,
                                            POINTER(H))

NULL_HOST_FN = ctypes.cast(None, HOST_FN)


class NativeError(Exception):
    """A swiftgrpc_* function returned a negative result code. `code` is the SWIFTGRPC_E_*
    value, `message` the library's explanation (swiftgrpc_last_error)."""

    def __init__(self, function: str, code: int, message: str) -> None:
        super().__init__(f"{function}: {message} ({errstr(code)}, {code})")
        self.function = function
        self.code = code
        self.message = message


def errstr(code: int) -> str:
    return (swiftgrpc_errstr(code) or b"").decode("utf-8", "replace")


def check(rc: int, function: str) -> int:
    """Turns a negative result into NativeError carrying the thread's last error message."""
    if rc < 0:
        msg = (swiftgrpc_last_error() or b"").decode("utf-8", "replace")
        raise NativeError(function, rc, msg or errstr(rc))
    return rc


def version() -> str:
    """The loaded library's version string."""
    return (swiftgrpc_version_string() or b"").decode()


# swiftgrpc_now_ns() is CLOCK_MONOTONIC, which time.monotonic_ns reads on Linux without a call
# into the library (tests/python/test_native.py checks that the two agree).
now_ns = time.monotonic_ns


def last_error() -> Optional[str]:
    m = swiftgrpc_last_error()
    return m.decode("utf-8", "replace") if m else None
