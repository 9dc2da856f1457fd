#!/usr/bin/env bash
# Builds the fuzz targets (swiftc -sanitize=fuzzer,address, with the core's sources) and runs
# each for SECONDS (default 30), from seeds written by seeds.py. A crash, a sanitizer report or
# a broken invariant fails the run; the input that did it is left in build/fuzz/.
#   usage: Tests/fuzz/run.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
out=${2:-build}/fuzz
export PATH="/opt/swift/usr/bin:$PATH"
mkdir -p "$out"
core=$(find Sources/SwiftGRPCCore -name '*.swift' | sort)
for target in ServerInbound Deframer; do
  swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name SwiftGRPCCore \
    -I Sources/CNGHTTP2 -I Sources/COpenSSL -I Sources/CZlib -I Sources/CLinux $core "Tests/fuzz/$target.swift" \
    -o "$out/$target" 2>&1 | grep -v -e "^warning: " -e "ld.gold: warning: Cannot export local symbol" || true
  [ -x "$out/$target" ] || { echo "fuzz target $target did not build"; exit 1; }
done
python3 Tests/fuzz/seeds.py "$out/seeds"
status=0
for target in ServerInbound Deframer; do
  seeds=$([ $target = ServerInbound ] && echo server || echo deframer)
  corpus="$out/corpus-$target"
  mkdir -p "$corpus"
  echo "== fuzzing $target for $seconds s"
  if ! (cd "$out" && ASAN_OPTIONS=detect_leaks=0 "./$target" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "corpus-$target" "seeds/$seeds" \
        > "$target.log" 2>&1); then
    tail -n 60 "$out/$target.log"
    status=1
  else
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$out/$target.log" | tail -n 2
  fi
done
exit $status
