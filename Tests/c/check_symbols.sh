#!/usr/bin/env bash
# Every function declared in the header is exported by the library, and nothing else named
# swiftgrpc_* is.
set -euo pipefail
lib=$1 header=$2
declared=$(grep -oE '^[a-z0-9_ *]*\bswiftgrpc_[a-z0-9_]+\(' "$header" | grep -oE 'swiftgrpc_[a-z0-9_]+' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -E '^swiftgrpc_' | sort -u)
if [ "$declared" != "$exported" ]; then
  echo "declared but not exported:"; comm -23 <(echo "$declared") <(echo "$exported")
  echo "exported but not declared:"; comm -13 <(echo "$declared") <(echo "$exported")
  exit 1
fi
echo "$(echo "$exported" | wc -l) documented functions exported"
