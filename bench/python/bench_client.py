"""The Python client of the benchmark suite: the same code on grpcio or swiftgrpc, with the modes
and output of bench/c/bench_client.c. Every response is checked ("failed" counts mismatches).
    python3 bench_client.py grpcio|swiftgrpc TARGET unary N CONC SIZE   (CONC threads; 1: latency)
    python3 bench_client.py grpcio|swiftgrpc TARGET aio N CONC SIZE     (CONC asyncio calls in flight)
    python3 bench_client.py grpcio|swiftgrpc TARGET stream COUNT SIZE
    python3 bench_client.py grpcio|swiftgrpc TARGET ping N SIZE
Prints one line: RESULT {json}. BENCH_COMPRESSION=gzip: see bench_payload.py."""
import asyncio
import json
import os
import queue
import struct
import sys
import threading
import time

impl, target, mode = sys.argv[1], sys.argv[2], sys.argv[3]
args = [int(a) for a in sys.argv[4:]]
if impl == "grpcio":
    import grpc as mod
    import grpc.aio as aio
else:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
    import swiftgrpc as mod
    import swiftgrpc.aio as aio
import bench_payload  # noqa: E402

OPTIONS = [("grpc.max_receive_message_length", 64 << 20),
           ("grpc.max_send_message_length", 64 << 20)] + bench_payload.OPTIONS
PREFIX = "/swiftgrpc.examples.Echo/"
payload = bench_payload.request


def report(**fields):
    print("RESULT " + json.dumps(dict(mode=mode, **fields)), flush=True)


def unary(n, conc, size):
    req = payload(size)
    with mod.insecure_channel(target, options=OPTIONS) as ch:
        call = ch.unary_unary(PREFIX + "Get")
        call(req, timeout=60)
        if conc == 1:
            lat, failed = [], 0
            t0 = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                failed += call(req, timeout=60) != req
                lat.append(time.perf_counter() - t)
            el = time.perf_counter() - t0
            lat.sort()
            return report(calls=n, concurrency=1, size=size, calls_per_s=round(n / el),
                          p50_us=round(lat[n // 2] * 1e6, 1), p99_us=round(lat[int(n * 0.99)] * 1e6, 1),
                          failed=failed)
        per, bad = n // conc, [0]

        def worker():
            b = 0
            for _ in range(per):
                b += call(req, timeout=60) != req
            bad[0] += b

        ts = [threading.Thread(target=worker) for _ in range(conc)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        el = time.perf_counter() - t0
        report(calls=per * conc, concurrency=conc, threads=conc, size=size,
               calls_per_s=round(per * conc / el), failed=bad[0])


async def unary_aio(n, conc, size):
    req = payload(size)
    async with aio.insecure_channel(target, options=OPTIONS) as ch:
        call = ch.unary_unary(PREFIX + "Get")
        await call(req, timeout=60)
        per, bad = n // conc, 0

        async def worker():
            nonlocal bad
            for _ in range(per):
                bad += (await call(req, timeout=60)) != req

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(conc)])
        el = time.perf_counter() - t0
        report(calls=per * conc, concurrency=conc, asyncio=True, size=size,
               calls_per_s=round(per * conc / el), failed=bad)


def stream(count, size):
    with mod.insecure_channel(target, options=OPTIONS) as ch:
        call = ch.unary_stream(PREFIX + "Stream")
        got = failed = 0
        t0 = time.perf_counter()
        for message in call(struct.pack("<II", count, size), timeout=120):
            got += 1
            failed += len(message) != size
        el = time.perf_counter() - t0
        report(messages=got, size=size, msgs_per_s=round(got / el), mb_per_s=round(got * size / el / 1e6, 1),
               failed=failed + (count - got))


def ping(n, size):
    req = payload(size)
    with mod.insecure_channel(target, options=OPTIONS) as ch:
        call = ch.stream_stream(PREFIX + "Ping")
        requests = queue.Queue()
        responses = call(iter(requests.get, None), timeout=120)
        lat, failed = [], 0
        for i in range(n + 1):  # round trip 0 warms up
            t = time.perf_counter()
            requests.put(req)
            failed += next(responses) != req
            if i:
                lat.append(time.perf_counter() - t)
        requests.put(None)
        failed += sum(1 for _ in responses)  # the stream must end with no extra message
        lat.sort()
        report(round_trips=n, size=size, p50_us=round(lat[n // 2] * 1e6, 1),
               p99_us=round(lat[int(n * 0.99)] * 1e6, 1), failed=failed)


if mode == "unary":
    unary(*args)
elif mode == "aio":
    asyncio.run(unary_aio(*args))
elif mode == "stream":
    stream(*args)
elif mode == "ping":
    ping(*args)
else:
    sys.exit(f"unknown mode {mode}")
