"""grpcio (Python) client reference for Tests/bench/client_bench.sh: unary calls to METHOD with
a 5-byte request, every response checked. CONC=1: sequential latency; else CONC calls kept in
flight with futures. Prints a line in client_driver's BENCH format."""
import sys
import threading
import time

import grpc

target, method, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with grpc.insecure_channel(target) as ch:
    call = ch.unary_unary(method)
    call(b"hello", timeout=10)  # connect first
    if conc <= 1:
        lat = []
        failed = 0
        for _ in range(n):
            t = time.perf_counter()
            failed += call(b"hello", timeout=10) != b"hello"
            lat.append(time.perf_counter() - t)
        lat.sort()
        print(f"BENCH latency n={n} p50_us={lat[n // 2] * 1e6:.1f} p99_us={lat[int(n * 0.99)] * 1e6:.1f} failed={failed}")
    else:
        sem = threading.Semaphore(conc)
        done = threading.Event()
        state = {"left": n, "failed": 0}
        lock = threading.Lock()

        def finished(f):
            sem.release()
            with lock:
                if f.exception() is not None or f.result() != b"hello":
                    state["failed"] += 1
                state["left"] -= 1
                if state["left"] == 0:
                    done.set()

        t0 = time.perf_counter()
        for _ in range(n):
            sem.acquire()
            call.future(b"hello", timeout=30).add_done_callback(finished)
        done.wait()
        secs = time.perf_counter() - t0
        print(f"BENCH throughput n={n} concurrency={conc} calls_per_s={n / secs:.0f} failed={state['failed']}")
