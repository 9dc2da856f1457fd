#!/usr/bin/env bash
# The fuzz targets (Tests/fuzz: the server's inbound bytes, the message deframer) for a long
# run: SECONDS each (default 600). CI runs them for 30 s each through CTest (fuzz_smoke).
#   usage: bench/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash Tests/fuzz/run.sh "${1:-600}" build
