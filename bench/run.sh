#!/usr/bin/env bash
# The benchmark suite in one command: installs what it needs, builds the library (build/, the
# same tree the tests use), the C and C++ bench programs (build/bench/) and the grpc-swift-2
# reference server (its own package, bench/peers/grpc-swift), runs every comparison
# (bench/bench.py) and writes the report (bench/report.py).
#
#   bash bench/run.sh            full run (about 30 minutes on 2 cores): bench/results/*.json,
#                                docs/BENCHMARKS.md and its plots
#   bash bench/run.sh --quick    everything briefly, a smoke test (CI runs it): results and
#                                report under build/bench-quick/, the committed ones untouched
# Options: --no-install (skip apt/pip), --only SECTIONS (comma-separated: machine, server,
# clients, streaming, compression, ffi, instructions, memory, tls; the report then reuses the other sections' results),
# --servers NAME (server section: only the servers whose name contains NAME, merged into the
# existing results).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="/opt/swift/usr/bin:$PATH" SWIFT_BACKTRACE=enable=no
quick=0 install=1 only="" servers=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --only) only=$2; shift ;;
    --servers) servers=$2; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done
[ $install = 1 ] && bash bench/install-prereqs.sh

echo "== building the library and the bench programs"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target swiftgrpc_swift
bin=build/bench
mkdir -p "$bin"
cflags=(-O2 -Wall -Wextra -Iinclude -Ibindings/c -Lbuild -Wl,-rpath,"$root/build")
gcc -std=c11 "${cflags[@]}" -o "$bin/bench_server" bench/c/bench_server.c -lswiftgrpc -lpthread
gcc -std=c11 "${cflags[@]}" -o "$bin/bench_client" bench/c/bench_client.c -lswiftgrpc
gcc -std=c11 "${cflags[@]}" -o "$bin/ffi_bench" bench/c/ffi_bench.c -lswiftgrpc -lpthread
read -ra grpcxx < <(pkg-config --cflags --libs grpc++)
g++ -O2 -std=c++17 -o "$bin/cpp_echo_server" bench/peers/cpp/echo_server.cc "${grpcxx[@]}"
g++ -O2 -std=c++17 -o "$bin/cpp_bench_client" bench/peers/cpp/bench_client.cc "${grpcxx[@]}"
(cd bench/peers/grpc-swift && swift build -c release 2>&1 | tail -n 1)
cp bench/peers/grpc-swift/.build/release/GRPCSwiftEchoServer "$bin/"

results=bench/results report=docs/BENCHMARKS.md flags=()
if [ $quick = 1 ]; then
  results=build/bench-quick/results report=build/bench-quick/BENCHMARKS.md flags=(--quick)
fi
# The report is written even when a measurement failed (it shows the error); the exit status
# is then bench.py's.
rc=0
python3 bench/bench.py --bin "$bin" --out "$results" "${flags[@]}" ${only:+--only "$only"} \
  ${servers:+--servers "$servers"} || rc=$?
python3 bench/report.py --results "$results" --report "$report"
exit $rc
