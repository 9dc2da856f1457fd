"""The benchmark suite: swiftgrpc against every incumbent, in one run. bench/run.sh builds what it
needs and calls this; it writes one JSON file per section into the results directory, then
bench/report.py turns them into docs/BENCHMARKS.md and its plots.

    python3 bench/bench.py --bin DIR --out DIR [--quick] [--only server,clients,...]

Sections: machine, server (h2load against every server), clients, streaming, ffi, memory, tls
(the same servers over TLS and plaintext in one run: the cost of TLS, and handshakes per second).
Every response is verified: h2load counts HTTP 200 only, so each run also checks that the DATA
bytes are requests x frame size (a gRPC call answered without a message is a rejection, and
fails the run unless the server is marked as one that may reject); the clients check every
message. A run that cannot be verified is recorded as an error and makes the exit status 1.
"""
import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GET = "/swiftgrpc.examples.Echo/Get"
SHAPES = [(2, 16), (16, 1), (100, 16)]  # h2load -c, -m
SIZES = [17, 1024]
TLS_SHAPES = [(2, 16), (100, 16)]  # gRPC frame bytes: 5-byte prefix + message
errors = []


def log(*args):
    print(*args, flush=True)


# ---- processes --------------------------------------------------------------------------------
class Server:
    """Starts a command that prints "listening on PORT" (or listens on a port given to it) and
    stops it with SIGTERM (then SIGKILL) on exit."""

    def __init__(self, name, cmd, port=None, env=None, timeout=60):
        self.name, self.cmd, self.port, self.timeout = name, cmd, port, timeout
        self.env = dict(os.environ, SWIFT_BACKTRACE="enable=no", **(env or {}))

    def __enter__(self):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="bench-server-", suffix=".log")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self.output()[-2000:]}")
            if self.port is not None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    pass
            else:
                m = re.search(r"listening on (\d+)", self.output())
                if m:
                    self.port = int(m.group(1))
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start: {self.output()[-2000:]}")

    def output(self):
        with open(self.log.name) as f:
            return f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def __exit__(self, *exc):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.log.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_client(cmd, timeout=600, env=None):
    """Runs a client program of the suite and returns its RESULT json (with "error" if it failed
    or reported failed calls)."""
    env = dict(os.environ, SWIFT_BACKTRACE="enable=no", **(env or {}))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s: {' '.join(cmd)}"}
    m = re.search(r"^RESULT (\{.*\})$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        return {"error": f"exit {p.returncode}: {' '.join(cmd)}: {(p.stdout + p.stderr)[-1500:]}"}
    r = json.loads(m.group(1))
    if r.get("failed"):
        r["error"] = f"{r['failed']} responses failed verification"
    return r


# ---- h2load -----------------------------------------------------------------------------------
def h2load_once(url, n, c, m, frame, body, may_reject, workdir):
    logfile = os.path.join(workdir, "h2load.log")
    if os.path.exists(logfile):
        os.remove(logfile)  # h2load appends to it
    cmd = ["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "--log-file", logfile, url]
    if body:
        cmd[1:1] = ["-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = p.stdout
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded", out)
    data = re.search(r"traffic: .*?\((\d+)\) data", out)
    rps = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    if not (req and data and rps):
        raise RuntimeError(f"h2load output not understood: {out[-1500:]} {p.stderr[-500:]}")
    succeeded, data_bytes = int(req.group(4)), int(data.group(1))
    answered = data_bytes // frame
    if succeeded != n or data_bytes % frame or (answered != n and not may_reject):
        raise RuntimeError(f"unverified run: {succeeded} of {n} HTTP 200, {data_bytes} data bytes "
                           f"(want {n * frame}): {n - answered} calls answered without a message")
    with open(logfile) as f:
        lat = sorted(int(line.split("\t")[2]) for line in f if line.strip())
    rate = float(rps.group(1))
    return {"req_per_s": rate * answered / n, "h2load_req_per_s": rate, "requests": n,
            "rejected": n - answered,
            "p50_us": lat[len(lat) // 2], "p99_us": lat[int(len(lat) * 0.99)]}


def h2load_measure(url, c, m, frame, body, may_reject, cfg, workdir):
    """A calibration run, then cfg.runs runs of about cfg.seconds each; the median run."""
    probe = h2load_once(url, max(cfg.calibrate, c), c, m, frame, body, may_reject, workdir)
    n = max(c * 10, int(probe["req_per_s"] * cfg.seconds))
    runs = [h2load_once(url, n, c, m, frame, body, may_reject, workdir) for _ in range(cfg.runs)]
    runs.sort(key=lambda r: r["req_per_s"])
    med = runs[len(runs) // 2]
    return dict(med, runs=[r["req_per_s"] for r in runs],
                rejected=sum(r["rejected"] for r in runs), requests=sum(r["requests"] for r in runs))


def servers(b, max_conc):
    """(name, group, command, may_reject) of every server of the comparison. grpc gem's pool is
    sized to the load so that it need not reject. The incumbents marked may_reject answer some
    calls without a message under the heaviest load: those are counted as rejections, and the
    server's req/s counts only the calls answered with their message."""
    py, rb = [sys.executable, "bench/python/echo_server.py"], ["ruby", "bench/ruby/echo_server.rb"]
    return [
        ("swiftgrpc C host, push (host fn -> 2 worker threads)", "C", [f"{b}/bench_server", "--workers", "2"], False),
        ("swiftgrpc C host, pull (2 threads on a queue)", "C", [f"{b}/bench_server", "--pull", "--workers", "2"], False),
        ("swiftgrpc C host, push in batches (batch host fn -> 2 worker threads)", "C",
         [f"{b}/bench_server", "--batch", "--workers", "2"], False),
        ("swiftgrpc C host, push answered inside the host fn", "C", [f"{b}/bench_server", "--inline"], False),
        ("C++ gRPC 1.51 (callback generic API)", "C", [f"{b}/cpp_echo_server"], False),
        ("grpc-swift-2 (SwiftNIO)", "Swift", [f"{b}/GRPCSwiftEchoServer"], False),
        ("swiftgrpc Python, sync API", "Python", py + ["swiftgrpc", "sync"], False),
        ("swiftgrpc Python, asyncio API", "Python", py + ["swiftgrpc", "aio"], False),
        ("grpcio, sync API", "Python", py + ["grpcio", "sync"], True),
        ("grpcio, asyncio API", "Python", py + ["grpcio", "aio"], True),
        ("swiftgrpc Ruby (pull: SwiftGRPC::Server)", "Ruby", rb + ["swiftgrpc", "32"], False),
        ("swiftgrpc Ruby, push (FFI::Function host fn)", "Ruby", ["ruby", "bench/ruby/dispatch_experiment.rb", "callback"], False),
        ("grpc gem 1.51 (RpcServer)", "Ruby", rb + ["grpc", str(max_conc + 16)], True),
    ]


def section_server(cfg):
    workdir = tempfile.mkdtemp(prefix="bench-h2load-")
    bodies = {}
    for frame in SIZES:
        body = bytes([0]) + (frame - 5).to_bytes(4, "big") + bytes((97 + i % 26) for i in range(frame - 5))
        bodies[frame] = os.path.join(workdir, f"echo{frame}.bin")
        with open(bodies[frame], "wb") as f:
            f.write(body)
    results = []
    shapes = cfg.shapes
    max_conc = max(c * m for c, m in shapes)
    specs = [(name, group, cmd, rej, None) for name, group, cmd, rej in servers(cfg.bin, max_conc)]
    port = free_port()
    specs.append(("nghttpd static file (HTTP/2 ceiling)", "HTTP/2",
                  ["nghttpd", "--no-tls", "-n", "2", "-d", workdir, str(port)], False, port))
    if cfg.servers:
        specs = [sp for sp in specs if cfg.servers in sp[0]]
    for name, group, cmd, may_reject, fixed_port in specs:
        log(f"== server: {name}")
        try:
            with Server(name, cmd, port=fixed_port) as srv:
                for frame in SIZES:
                    for c, m in shapes:
                        grpc = fixed_port is None
                        url = f"http://127.0.0.1:{srv.port}" + (GET if grpc else f"/echo{frame}.bin")
                        row = {"server": name, "group": group, "frame": frame, "c": c, "m": m}
                        try:
                            row.update(h2load_measure(url, c, m, frame, bodies[frame] if grpc else None,
                                                      may_reject, cfg, workdir))
                            log(f"   {frame:5d} B  -c {c:3d} -m {m:2d}: {row['req_per_s']:10.0f} req/s  "
                                f"p50 {row['p50_us']} us  p99 {row['p99_us']} us  rejected {row['rejected']}")
                        except Exception as e:  # recorded, and the run goes on
                            row["error"] = str(e)
                            errors.append(f"server {name} {frame} B -c {c} -m {m}: {e}")
                            log(f"   {frame:5d} B  -c {c:3d} -m {m:2d}: ERROR {e}")
                        results.append(row)
        except Exception as e:
            errors.append(f"server {name}: {e}")
            results.append({"server": name, "group": group, "error": str(e)})
            log(f"   ERROR {e}")
    return results


# ---- clients ----------------------------------------------------------------------------------
def section_clients(cfg):
    """Unary 17-byte calls against one server (the C host answering in its host fn, the fastest
    server here, so that the client is what is measured)."""
    b, py, rb = cfg.bin, [sys.executable, "bench/python/bench_client.py"], ["ruby", "bench/ruby/bench_client.rb"]
    lat_n, thr_n = cfg.client_latency_calls, cfg.client_throughput_calls
    clients = [
        ("swiftgrpc C", "C", lambda t, n, c: [f"{b}/bench_client", t, "unary", str(n), str(c), "12"], [(64, "calls in flight")]),
        ("C++ gRPC 1.51", "C", lambda t, n, c: [f"{b}/cpp_bench_client", t, "unary", str(n), str(c), "12"], [(64, "calls in flight")]),
        ("swiftgrpc Python", "Python", lambda t, n, c, mode="unary": py + ["swiftgrpc", t, mode, str(n), str(c), "12"], [(16, "threads"), (64, "asyncio")]),
        ("grpcio", "Python", lambda t, n, c, mode="unary": py + ["grpcio", t, mode, str(n), str(c), "12"], [(16, "threads"), (64, "asyncio")]),
        ("swiftgrpc Ruby", "Ruby", lambda t, n, c, mode="unary": rb + ["swiftgrpc", t, mode, str(n), str(c), "12"], [(16, "threads"), (64, "fibers")]),
        ("grpc gem 1.51", "Ruby", lambda t, n, c: rb + ["grpc", t, "unary", str(n), str(c), "12"], [(16, "threads")]),
    ]
    results = []
    with Server("C inline server", [f"{b}/bench_server", "--inline"]) as srv:
        target = f"127.0.0.1:{srv.port}"
        for name, group, cmd, conc_modes in clients:
            log(f"== client: {name}")
            lat = [run_client(cmd(target, lat_n, 1)) for _ in range(cfg.runs)]
            row = {"client": name, "group": group, "latency": median_by(lat, "p50_us"), "throughput": {}}
            for conc, how in conc_modes:
                mode = {"asyncio": "aio", "fibers": "fibers"}.get(how)  # else the program's default
                runs = [run_client(cmd(target, thr_n, conc, mode) if mode else cmd(target, thr_n, conc))
                        for _ in range(cfg.runs)]
                row["throughput"][f"{conc} {how}"] = median_by(runs, "calls_per_s")
            for r in [row["latency"], *row["throughput"].values()]:
                if "error" in r:
                    errors.append(f"client {name}: {r['error']}")
            log(f"   {json.dumps(row)}")
            results.append(row)
    return results


def median_by(runs, key):
    good = [r for r in runs if "error" not in r]
    if len(good) < len(runs):
        return next(r for r in runs if "error" in r)
    good.sort(key=lambda r: r[key])
    return dict(good[len(good) // 2], runs=[r[key] for r in good])


# ---- streaming --------------------------------------------------------------------------------
def self_stacks(cfg):
    """The stacks that talk to themselves: (name, server command, client command of a target)."""
    b, py = cfg.bin, sys.executable
    return [
        ("swiftgrpc C", [f"{b}/bench_server", "--workers", "2"], lambda t: [f"{b}/bench_client", t]),
        ("swiftgrpc Python", [py, "bench/python/echo_server.py", "swiftgrpc", "sync"],
         lambda t: [py, "bench/python/bench_client.py", "swiftgrpc", t]),
        ("grpcio", [py, "bench/python/echo_server.py", "grpcio", "sync"],
         lambda t: [py, "bench/python/bench_client.py", "grpcio", t]),
        ("C++ gRPC 1.51", [f"{b}/cpp_echo_server"], lambda t: [f"{b}/cpp_bench_client", t]),
    ]


def section_streaming(cfg):
    """Each stack talks to itself: its server and its client."""
    stacks = self_stacks(cfg)
    tests = [(f"stream {size} B", ["stream", str(count), str(size)], "msgs_per_s")
             for size, count in cfg.stream_counts] + [
        ("unary 4 MiB", ["unary", str(cfg.big_calls), "1", str(4 << 20)], "p50_us"),
        ("ping-pong 64 B", ["ping", str(cfg.ping_round_trips), "64"], "p50_us"),
    ]
    results = []
    for name, server_cmd, client in stacks:
        log(f"== streaming: {name}")
        try:
            with Server(name, server_cmd) as srv:
                for test, args, key in tests:
                    runs = [run_client(client(f"127.0.0.1:{srv.port}") + args) for _ in range(cfg.runs)]
                    r = dict(median_by(runs, key), stack=name, test=test)
                    if "error" in r:
                        errors.append(f"streaming {name} {test}: {r['error']}")
                    log(f"   {test}: {json.dumps(r)}")
                    results.append(r)
        except Exception as e:
            errors.append(f"streaming {name}: {e}")
            results.append({"stack": name, "error": str(e)})
    return results


# ---- compression ------------------------------------------------------------------------------
def section_compression(cfg):
    """Each stack talks to itself, server and client both compressing with gzip
    (BENCH_COMPRESSION=gzip: text-like payloads that gzip packs 3:1 at 1 KiB, 6:1 at 64 KiB),
    and the same payloads uncompressed in the same run: unary calls with 16 in flight (calls/s)
    and a server stream (messages/s), 1 KiB and 64 KiB. Every response is checked by the client."""
    n1, n64, c1, c64 = cfg.compression_counts
    tests = [("unary 1 KiB", ["unary", str(n1), "16", "1024"], "calls_per_s"),
             ("unary 64 KiB", ["unary", str(n64), "16", "65536"], "calls_per_s"),
             ("stream 1 KiB", ["stream", str(c1), "1024"], "msgs_per_s"),
             ("stream 64 KiB", ["stream", str(c64), "65536"], "msgs_per_s")]
    results = []
    for name, server_cmd, client in self_stacks(cfg):
        for encoding in ("identity", "gzip"):
            env = {"BENCH_COMPRESSION": encoding}
            log(f"== compression: {name}, {encoding}")
            try:
                with Server(name, server_cmd, env=env) as srv:
                    for test, args, key in tests:
                        runs = [run_client(client(f"127.0.0.1:{srv.port}") + args, env=env)
                                for _ in range(cfg.runs)]
                        r = dict(median_by(runs, key), stack=name, encoding=encoding, test=test, key=key)
                        if "error" in r:
                            errors.append(f"compression {name} {encoding} {test}: {r['error']}")
                        log(f"   {test}: {json.dumps(r)}")
                        results.append(r)
            except Exception as e:
                errors.append(f"compression {name} {encoding}: {e}")
                results.append({"stack": name, "encoding": encoding, "error": str(e)})
    return results


# ---- FFI --------------------------------------------------------------------------------------
def section_ffi(cfg):
    b = cfg.bin
    n = str(cfg.ffi_round_trips)
    results = []
    for host, cmd in [
        ("C", [f"{b}/ffi_bench", n]),
        ("Python", [sys.executable, "bench/python/ffi_bench.py", n]),
    ]:
        log(f"== ffi: {host}")
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                           env=dict(os.environ, SWIFT_BACKTRACE="enable=no"))
        found = [json.loads(m) for m in re.findall(r"^RESULT (\{.*\})$", p.stdout, re.M)]
        if p.returncode != 0 or not found:
            errors.append(f"ffi {host}: exit {p.returncode}: {(p.stdout + p.stderr)[-1500:]}")
            results.append({"host": host, "error": p.stderr[-1500:]})
        for r in found:
            r["host"] = host
            log(f"   {json.dumps(r)}")
            results.append(r)
    return results


# ---- instructions per call ----------------------------------------------------------------------
def count_instructions(kind, name, script, calls, args, timeout):
    """One row: `script` (bench/instructions.sh or bench/client_instructions.sh) run with CALLS
    and ARGS; {kind: name, calls, instructions_per_call}, or {kind: name, error}."""
    log(f"== instructions: {name}")
    p = subprocess.run(["bash", script, str(calls)] + args, capture_output=True, text=True,
                       cwd=ROOT, timeout=timeout)
    m = re.search(r"instructions per call: (\d+)", p.stdout)
    if p.returncode != 0 or not m:
        errors.append(f"instructions {name}: exit {p.returncode}: {(p.stdout + p.stderr)[-1500:]}")
        return {kind: name, "error": (p.stdout + p.stderr)[-1500:]}
    r = {kind: name, "calls": calls, "instructions_per_call": int(m.group(1))}
    log(f"   {json.dumps(r)}")
    return r


def section_instructions(cfg):
    """Instructions a process executes per call under callgrind, deterministic where req/s is
    not: the servers (bench/instructions.sh: the C hosts show the library's own work, the Python
    and Ruby servers the binding's on top) and the clients (bench/client_instructions.sh: two
    runs against the inline C server, start-up cancelled out, in the concurrent modes of the
    clients section)."""
    n = cfg.instruction_calls
    py, rb = [sys.executable, "bench/python/echo_server.py", "swiftgrpc"], ["ruby", "bench/ruby/echo_server.rb"]
    pyc, rbc = [sys.executable, "bench/python/bench_client.py", "swiftgrpc", "TARGET"], \
        ["ruby", "bench/ruby/bench_client.rb", "swiftgrpc", "TARGET"]
    # The binding servers are slower under callgrind: a quarter of the calls.
    servers = [("C host, push answered inside the host fn", ["--inline"], n),
               ("C host, push (host fn -> 2 worker threads)", ["--workers", "2"], n),
               ("C host, pull (2 threads on a queue)", ["--pull", "--workers", "2"], n),
               ("Python, sync API", py + ["sync"], n // 4),
               ("Python, asyncio API", py + ["aio"], n // 4),
               ("Ruby (pull: SwiftGRPC::Server)", rb + ["swiftgrpc", "32"], n // 4)]
    client_calls = max(400, n // 5)
    clients = [("C client, 64 calls in flight", [f"{cfg.bin}/bench_client", "TARGET", "unary", "N", "64", "12"]),
               ("Python client, asyncio, 64 calls in flight", pyc + ["aio", "N", "64", "12"]),
               ("Python client, 16 threads", pyc + ["unary", "N", "16", "12"]),
               ("Ruby client, 64 fibers", rbc + ["fibers", "N", "64", "12"]),
               ("Ruby client, 16 threads", rbc + ["unary", "N", "16", "12"])]
    return ([count_instructions("server", name, "bench/instructions.sh", calls, args, 900)
             for name, args, calls in servers] +
            [count_instructions("client", name, "bench/client_instructions.sh", client_calls, args, 1800)
             for name, args in clients])


# ---- memory -----------------------------------------------------------------------------------
def idle_connections(port, count):
    """Opens `count` HTTP/2 connections that send the preface and SETTINGS, waits for each server
    SETTINGS frame, and returns the sockets (left idle)."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(preface)
        socks.append(s)
    for s in socks:
        s.settimeout(10)
        head = s.recv(9)
        if len(head) < 9 or head[3] != 4:
            raise RuntimeError("no SETTINGS frame from the server")
    return socks


def section_memory(cfg):
    b, results = cfg.bin, []
    workdir = tempfile.mkdtemp(prefix="bench-mem-")
    body = os.path.join(workdir, "echo17.bin")
    with open(body, "wb") as f:
        f.write(bytes([0, 0, 0, 0, 12]) + b"hello world!")
    for name, cmd in [("swiftgrpc C host (push)", [f"{b}/bench_server", "--workers", "2"]),
                      ("C++ gRPC 1.51", [f"{b}/cpp_echo_server"])]:
        log(f"== memory: {name}")
        try:
            with Server(name, cmd) as srv:
                url = f"http://127.0.0.1:{srv.port}{GET}"
                start = srv.rss_kib()
                samples, calls = [(0, start)], 0
                chunk = cfg.memory_calls // 10
                for _ in range(10):
                    h2load_once(url, chunk, 2, 16, 17, body, False, workdir)
                    calls += chunk
                    samples.append((calls, srv.rss_kib()))
                warm = samples[2][1]  # after a fifth of the calls: caches, arenas and pools in place
                growth = (samples[-1][1] - warm) / warm
                peak = (max(s[1] for s in samples[2:]) - warm) / warm
                before = srv.rss_kib()
                socks = idle_connections(srv.port, cfg.idle_connections)
                time.sleep(0.5)  # the server has answered every SETTINGS; let it settle
                after = srv.rss_kib()
                for s in socks:
                    s.close()
                row = {"server": name, "calls": calls, "samples": samples, "rss_start_kib": start,
                       "rss_warm_kib": warm, "rss_end_kib": samples[-1][1], "growth": growth,
                       "peak_growth": peak, "idle_connections": len(socks),
                       "rss_before_idle_kib": before, "rss_with_idle_kib": after,
                       "kib_per_idle_connection": (after - before) / len(socks)}
                log(f"   {json.dumps({k: v for k, v in row.items() if k != 'samples'})}")
                results.append(row)
        except Exception as e:
            errors.append(f"memory {name}: {e}")
            results.append({"server": name, "error": str(e)})
    return results


# ---- machine ----------------------------------------------------------------------------------
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=ROOT,
                              timeout=60).stdout.strip()
    except Exception:
        return ""


def section_machine(cfg):
    model = re.search(r"Model name:\s*(.*)", sh("lscpu"))
    mhz = re.search(r"CPU max MHz:\s*(.*)", sh("lscpu"))
    resolved = os.path.join(ROOT, "bench/peers/grpc-swift/Package.resolved")
    swift_pkgs = {}
    if os.path.exists(resolved):
        for pin in json.load(open(resolved)).get("pins", []):
            swift_pkgs[pin["identity"]] = pin["state"].get("version")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if cfg.quick else "full",
        "cores": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "cpu_max_mhz": mhz.group(1).strip() if mhz else None,
        "memory": sh("free -h | awk '/Mem:/{print $2}'"),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "swiftgrpc": sh("grep -m1 SWIFTGRPC_VERSION_STRING include/swiftgrpc.h | cut -d'\"' -f2"),
        "commit": sh("git rev-parse --short HEAD"),
        "swift": sh("swift --version 2>&1 | head -1"),
        "libnghttp2": sh("pkg-config --modversion libnghttp2"),
        "h2load": sh("h2load --version | head -1"),
        "grpc++": sh("pkg-config --modversion grpc++"),
        "grpcio": sh(f"{sys.executable} -c 'import grpc; print(grpc.__version__)'"),
        "python": platform.python_version(),
        "ruby": sh("ruby -e 'print RUBY_VERSION'"),
        "grpc gem": sh("ruby -e 'require \"grpc\"; print GRPC::VERSION'"),
        "ffi gem": sh("ruby -e 'require \"ffi\"; print FFI::VERSION'"),
        "grpc-swift-2": swift_pkgs.get("grpc-swift-2"),
        "grpc-swift-nio-transport": swift_pkgs.get("grpc-swift-nio-transport"),
        "swift-nio": swift_pkgs.get("swift-nio"),
    }


# ---- TLS --------------------------------------------------------------------------------------
def section_tls(cfg):
    """The C host (inline and push) and C++ gRPC, each over plaintext and TLS in the same run:
    steady unary throughput (h2load -c 2 -m 16 and -c 100 -m 16, 17 B, verified), and new TLS
    connections per second (h2load -c K -n K -m 1: every client connects, handshakes, makes one
    call and is done; the rate counts them all)."""
    workdir = tempfile.mkdtemp(prefix="bench-tls-")
    sys.path.insert(0, os.path.join(ROOT, "Tests", "tls"))
    import certs  # noqa: E402
    pki = certs.make(os.path.join(workdir, "pki"))
    tls = ["--tls-cert", os.path.join(pki, "server.pem"), "--tls-key", os.path.join(pki, "server.key")]
    body = os.path.join(workdir, "echo17.bin")
    with open(body, "wb") as f:
        f.write(bytes([0, 0, 0, 0, 12]) + b"abcdefghijkl")
    b = cfg.bin
    stacks = [("swiftgrpc C host, push answered inside the host fn", [f"{b}/bench_server", "--inline"]),
              ("swiftgrpc C host, push (host fn -> 2 worker threads)", [f"{b}/bench_server", "--workers", "2"]),
              ("C++ gRPC 1.51 (callback generic API)", [f"{b}/cpp_echo_server"])]
    handshake_clients = 20 if cfg.quick else 200
    results = []
    for name, cmd in stacks:
        for security in ("plaintext", "TLS"):
            log(f"== tls: {name}, {security}")
            row = {"server": name, "security": security, "commit": sh("git rev-parse --short HEAD"),
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            try:
                with Server(name, cmd + (tls if security == "TLS" else [])) as srv:
                    scheme = "https" if security == "TLS" else "http"
                    url = f"{scheme}://127.0.0.1:{srv.port}{GET}"
                    for c, m in TLS_SHAPES:
                        r = h2load_measure(url, c, m, 17, body, False, cfg, workdir)
                        row[f"c{c}m{m}"] = r["req_per_s"]
                        row[f"c{c}m{m}_p50_us"] = r["p50_us"]
                        log(f"   -c {c:3d} -m {m:2d}: {r['req_per_s']:10.0f} req/s  p50 {r['p50_us']} us")
                    if security == "TLS":
                        k = handshake_clients
                        runs = sorted(h2load_once(url, k, k, 1, 17, body, False, workdir)["req_per_s"]
                                      for _ in range(cfg.runs))
                        row["connections_per_s"] = runs[len(runs) // 2]
                        row["connections_runs"] = runs
                        log(f"   new connections (handshake + 1 call): {row['connections_per_s']:.0f}/s")
            except Exception as e:
                row["error"] = str(e)
                errors.append(f"tls {name} {security}: {e}")
                log(f"   ERROR {e}")
            results.append(row)
    return results


# ---- main -------------------------------------------------------------------------------------
class Config:
    def __init__(self, a):
        self.bin, self.quick, self.servers = os.path.abspath(a.bin), a.quick, a.servers
        q = a.quick
        self.shapes = SHAPES
        self.seconds = 0.3 if q else 3.0
        self.calibrate = 300 if q else 3000
        self.runs = 1 if q else 3
        self.client_latency_calls = 200 if q else 5000
        self.client_throughput_calls = 2000 if q else 40000
        self.stream_counts = [(64, 2000), (1024, 2000), (65536, 50)] if q else \
            [(64, 100000), (1024, 50000), (65536, 2000)]
        self.big_calls = 2 if q else 20
        # unary 1 KiB, unary 64 KiB, stream 1 KiB, stream 64 KiB
        self.compression_counts = (500, 100, 1000, 100) if q else (20000, 2000, 20000, 1000)
        self.ping_round_trips = 200 if q else 5000
        self.ffi_round_trips = 20000 if q else 1000000
        self.memory_calls = 50000 if q else 1000000
        self.idle_connections = 50 if q else 1000
        self.instruction_calls = 2000 if q else 20000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory of the built bench programs")
    ap.add_argument("--out", required=True, help="results directory")
    ap.add_argument("--quick", action="store_true", help="everything, briefly (a smoke test)")
    ap.add_argument("--only", default="machine,server,clients,streaming,compression,ffi,instructions,memory,tls")
    ap.add_argument("--servers", default="", help="server section: only the servers whose name "
                    "contains this; their rows replace theirs in the existing server.json")
    a = ap.parse_args()
    cfg = Config(a)
    os.makedirs(a.out, exist_ok=True)
    sections = {"machine": section_machine, "server": section_server, "clients": section_clients,
                "streaming": section_streaming, "compression": section_compression, "ffi": section_ffi,
                "instructions": section_instructions, "memory": section_memory,
                "tls": section_tls}
    for name in a.only.split(","):
        t0 = time.monotonic()
        result = sections[name](cfg)
        path = os.path.join(a.out, f"{name}.json")
        if name == "server" and cfg.servers and os.path.exists(path):
            with open(path) as f:
                old = json.load(f)["results"]
            fresh = {r["server"] for r in result}
            merged = [r for r in old if r["server"] not in fresh]
            for r in result:  # in the place of the rows they replace
                i = next((k for k, o in enumerate(old) if o["server"] == r["server"]), len(merged))
                merged.insert(min(i, len(merged)), r)
            result = merged
        with open(path, "w") as f:
            json.dump({"section": name, "quick": cfg.quick, "results": result}, f, indent=1)
        log(f"-- {name}: {time.monotonic() - t0:.0f} s")
    if errors:
        log(f"{len(errors)} errors:")
        for e in errors:
            log(f"  {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
