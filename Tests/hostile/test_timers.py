"""Deadlines: every call with a grpc-timeout arms a timer; a call that ends cancels it. 1.2M
calls with a 10^8 s timeout must leave the server's memory flat (they used to stay in the
loop's heap until the deadline: ~165 bytes a call)."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, MIB, TEST, c_host

CALLS = 1_200_000


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) missing")
def test_a_million_long_deadlines_leave_memory_flat(record):
    host = c_host()
    try:
        req = os.path.join(BUILD, "hostile-req.bin")
        with open(req, "wb") as f:
            f.write(b"\x00\x00\x00\x00\x05hello")
        url = f"http://127.0.0.1:{host.port}{TEST}Inline"
        rss = []
        for n in [CALLS // 5] * 5:  # the first fifth warms up
            out = subprocess.run(
                ["timeout", "300", "h2load", "-n", str(n), "-c", "4", "-m", "32", "-d", req,
                 "-H", "content-type: application/grpc", "-H", "te: trailers",
                 "-H", "grpc-timeout: 27778H", url],  # 27778 hours = 10^8 seconds
                capture_output=True, text=True).stdout
            assert re.search(rf"\b{n} succeeded", out), out[-800:]
            assert f"({n * 10}) data" in out.replace(",", ""), out[-800:]  # every answer arrived
            rss.append(host.rss())
        growth = (rss[-1] - rss[0]) / rss[0]
        record("RSS after each fifth (MiB)", [round(r / MIB, 1) for r in rss])
        record("growth after warm-up", f"{growth:+.1%}")
        assert growth <= 0.10, f"RSS grew {growth:+.1%} over {CALLS * 4 // 5} calls: {rss}"
    finally:
        host.stop()
