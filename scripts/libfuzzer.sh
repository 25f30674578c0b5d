#!/usr/bin/env bash
# Coverage-guided fuzzing of every driver in tests/fuzz/ with clang's libFuzzer under ASan/UBSan
# (the CI runs the same drivers as fixed-seed random mutators; this finds what those miss: a
# libFuzzer run found the cache key's crash in session 22).
#
#   scripts/libfuzzer.sh [SECONDS_PER_DRIVER] [DRIVER...]    (default 120 s, every driver)
#
# Builds the core with clang into build/libfuzzer (needs clang: `apt-get install clang`), seeds a
# corpus per driver from the driver's own seed strings (tools/fuzz_seeds.py) under
# build/libfuzzer/corpus/, keeps what it learns there between runs, and writes a crashing input
# to build/libfuzzer/artifacts/. Exits non-zero if any driver found something.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
shift || true
out=build/libfuzzer
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"
# rapidjson 1.1.0 adds an offset to a null pointer in its Stack (harmless, fixed upstream): only
# clang's UBSan reports it, so that one check is off.
cat > "$out/clangxx" <<'SH'
#!/bin/sh
exec clang++ "$@" -fno-sanitize=pointer-overflow
SH
chmod +x "$out/clangxx"
if [ ! -f "$out/core/build.ninja" ]; then
  CXX="$PWD/$out/clangxx" CC=clang cmake -S . -B "$out/core" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DORROUTE_BUILD_TESTS=OFF -DORROUTE_BUILD_PYTHON=OFF -DORROUTE_SANITIZE=ON \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
fi
cmake --build "$out/core" -j"$(nproc)" --target orroute_core
redis=()
if grep -q ORROUTE_HAVE_REDIS "$out/core/build.ninja"; then redis=(-DORROUTE_HAVE_REDIS=1 -lhiredis); fi
drivers=("$@")
if [ ${#drivers[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.cpp; do drivers+=("$(basename "$f" .cpp)"); done
fi
export ORROUTE_VOCAB_DIR="$PWD/python/orroute/data"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for d in "${drivers[@]}"; do
  "$out/clangxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DORROUTE_LIBFUZZER -DRAPIDJSON_HAS_STDSTRING=1 -DORROUTE_SOURCE_DIR="\"$PWD\"" -Icpp \
    -isystem /usr/include/hiredis "tests/fuzz/$d.cpp" "$out/core/liborroute_core.a" \
    -lcurl -lcrypto -lsqlite3 "${redis[@]}" -lpthread -ldl -o "$out/$d" 2>"$out/logs/$d.build"
  mkdir -p "$out/corpus/$d"
  python3 tools/fuzz_seeds.py "tests/fuzz/$d.cpp" "$out/corpus/$d" >/dev/null
  echo "== $(date -u +%T) $d, ${seconds}s"
  if "$out/$d" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
      -artifact_prefix="$out/artifacts/$d-" "$out/corpus/$d" >"$out/logs/$d.log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$out/logs/$d.log" | tr '\n' ' '; echo
  else
    status=1
    echo "   FOUND something: $out/logs/$d.log"; grep -m3 -E "ERROR|runtime error|SUMMARY" "$out/logs/$d.log" || true
  fi
done
exit "$status"
