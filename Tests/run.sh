#!/usr/bin/env bash
# The whole test suite on a fresh machine: prerequisites, one release build of the library
# (reused by every suite), the Swift core tests, then CTest (C ABI, grpcio interop, examples,
# exported symbols, self-contained library), then the benchmark suite in quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH" SWIFT_BACKTRACE=enable=no
[ "${1:-}" = "--no-install" ] || bash Tests/install-prereqs.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
swift test --scratch-path .build 2>&1 | tail -n 3
ctest --test-dir build --output-on-failure
# The benchmark suite in quick mode: a smoke test of every benchmark (no timing asserted), on the
# library built above. Its report goes to build/bench-quick/.
bash bench/run.sh --quick --no-install
