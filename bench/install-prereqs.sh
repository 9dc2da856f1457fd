#!/usr/bin/env bash
# What the benchmark suite needs: the test suite's prerequisites, which include C++ gRPC
# (libgrpc++-dev: the reference server and client), nghttp2's h2load and nghttpd, and matplotlib.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tests/install-prereqs.sh
