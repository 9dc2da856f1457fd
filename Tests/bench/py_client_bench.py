"""Python client benchmark, the same code on grpcio or swiftgrpc: unary calls of a 5-byte
request to /swiftgrpc.examples.Echo/Get, every response checked.
    python3 py_client_bench.py grpcio|swiftgrpc TARGET N
Prints three BENCH lines: sequential latency (p50/p99), calls/s with 16 threads making
blocking calls, and calls/s with 64 asyncio calls in flight."""
import asyncio
import os
import sys
import threading
import time

impl, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if impl == "grpcio":
    import grpc as mod
    import grpc.aio as aio
else:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
    import swiftgrpc as mod
    import swiftgrpc.aio as aio
METHOD = "/swiftgrpc.examples.Echo/Get"

with mod.insecure_channel(target) as ch:
    call = ch.unary_unary(METHOD)
    call(b"hello", timeout=10)
    lat, failed = [], 0
    for _ in range(n):
        t = time.perf_counter()
        failed += call(b"hello", timeout=10) != b"hello"
        lat.append(time.perf_counter() - t)
    lat.sort()
    print(f"BENCH {impl} latency n={n} p50_us={lat[n // 2] * 1e6:.1f} "
          f"p99_us={lat[int(n * 0.99)] * 1e6:.1f} failed={failed}", flush=True)

    threads, per = 16, n // 16
    bad = [0]

    def worker():
        b = 0
        for _ in range(per):
            b += call(b"hello", timeout=10) != b"hello"
        bad[0] += b

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.perf_counter() - t0
    print(f"BENCH {impl} threads16 calls={threads * per} calls_per_s={threads * per / el:.0f} "
          f"failed={bad[0]}", flush=True)


async def aio_bench():
    async with aio.insecure_channel(target) as ch:
        call = ch.unary_unary(METHOD)
        await call(b"hello", timeout=10)
        conc, per = 64, n // 64
        bad = 0

        async def worker():
            nonlocal bad
            for _ in range(per):
                bad += (await call(b"hello", timeout=10)) != b"hello"

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(conc)])
        el = time.perf_counter() - t0
        print(f"BENCH {impl} aio64 calls={conc * per} calls_per_s={conc * per / el:.0f} "
              f"failed={bad}", flush=True)

asyncio.run(aio_bench())
