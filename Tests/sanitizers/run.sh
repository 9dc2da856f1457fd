#!/usr/bin/env bash
# The C tests under a sanitizer: builds the library (debug) with Swift's -sanitize=address or
# -sanitize=thread, the C test programs with the toolchain's clang and the same sanitizer, then
# runs the ABI bad-input test and the grpcio interop suite (the C server under grpcio clients,
# the C client against grpcio servers; both threaded) on them. Any report fails the run.
#   usage: Tests/sanitizers/run.sh address|thread [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
kind=$1
root=$(pwd)
build=${2:-build}
[[ "$build" = /* ]] || build=$root/$build  # (an absolute BUILD_DIR was once nested under the root)
out=$build/$([ "$kind" = address ] && echo asan || echo tsan)
export PATH="/opt/swift/usr/bin:$PATH" SWIFT_BACKTRACE=enable=no
swift build -c debug --sanitize="$kind" --static-swift-stdlib --product swiftgrpc \
  --scratch-path "$out/swiftpm" 2>&1 | tail -n 1
lib=$out/swiftpm/debug
extra=()
# The thread sanitizer's runtime expects libdispatch, which the toolchain ships.
[ "$kind" = thread ] && extra=(-L/opt/swift/usr/lib/swift/linux -ldispatch -lBlocksRuntime
                               -Wl,-rpath,/opt/swift/usr/lib/swift/linux)
for src in Tests/c/abi_test.c Tests/c/interop_server.c Tests/c/client_driver.c; do
  clang -fsanitize="$kind" -g -O1 -Iinclude -Ibindings/c "$src" -L"$lib" -lswiftgrpc \
    -Wl,-rpath,"$lib" "${extra[@]}" -lpthread -o "$out/$(basename "$src" .c)" 2>&1 \
    | { grep -v "ld.gold: warning: Cannot export local symbol" || true; }
done
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:die_after_fork=0:suppressions=$root/Tests/sanitizers/tsan.supp"
"$out/abi_test"
SWIFTGRPC_BUILD_DIR=$out python3 -m pytest -q -p no:cacheprovider Tests/interop
