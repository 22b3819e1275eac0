#!/usr/bin/env bash
# Fuzzes Cairn's decoders with libFuzzer, coverage-guided, on the stable toolchain:
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS] [LIBFUZZER_ARG...]
#
# Runs each target (default: all, one after another) for SECONDS (default 60) on
# a 2 MiB stack (CAIRN_FUZZ_STACK_KB), then prints one line per target and exits
# 1 if any crashed; the crashing input is saved in fuzz/artifacts/TARGET/ and
# replayed with
#   "$CARGO_TARGET_DIR-fuzz/x86_64-unknown-linux-gnu/debug/TARGET" FILE
# Targets: the [[bin]]s of fuzz/Cargo.toml whose sources are in fuzz/fuzz_targets/
# (the checks are in fuzz/src/). Not part of scripts/test.sh: the ordinary tests
# only replay the seeds and fuzz/regressions/.
#
# How this works without nightly (cargo-fuzz's default AddressSanitizer build
# passes -Zsanitizer, which stable rustc refuses): the libfuzzer-sys crate builds
# libFuzzer itself, and the flags below are the ones `cargo fuzz build
# --sanitizer none` passes, all stable: LLVM's SanitizerCoverage pass with
# inline 8-bit counters, PC tables, comparison tracing and stack depth.
# `--target` keeps them off build scripts and proc macros. The build has a target
# dir of its own (the flags would otherwise invalidate the normal build), and
# borrows the normal build's RocksDB library when it has one of the same version:
# the C++ does not depend on Rust flags, and compiling it again takes 20+ minutes
# on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
source scripts/env.sh

usage() {
  echo "usage: scripts/fuzz.sh [TARGET|all] [SECONDS] [LIBFUZZER_ARG...]" >&2
  echo "targets: ${all_targets[*]}" >&2
  exit 2
}

mapfile -t all_targets < <(sed -n 's|^path = "fuzz_targets/\(.*\)\.rs"$|\1|p' fuzz/Cargo.toml)
which="${1:-all}"
seconds="${2:-60}"
shift $(($# < 2 ? $# : 2))
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || usage
if [ "$which" = all ]; then
  targets=("${all_targets[@]}")
elif printf '%s\n' "${all_targets[@]}" | grep -qx -- "$which"; then
  targets=("$which")
else
  usage
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
fuzz_dir="${CAIRN_FUZZ_TARGET_DIR:-$CARGO_TARGET_DIR-fuzz}"
mkdir -p "$fuzz_dir"

# RocksDB: the normal build's library if it is of the version Cargo.lock names.
if [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
  version="$(sed -n '/^name = "librocksdb-sys"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock)"
  lib_dir="$fuzz_dir/rocksdb-$version"
  if [ ! -f "$lib_dir/librocksdb.a" ]; then
    for output in "$CARGO_TARGET_DIR"/debug/build/librocksdb-sys-*/output; do
      [ -f "$output" ] || continue
      built="$(sed -n 's|^cargo:cargo_manifest_dir=.*/librocksdb-sys-||p' "$output")"
      lib="$(dirname "$output")/out/librocksdb.a"
      if [ "$built" = "$version" ] && [ -f "$lib" ]; then
        mkdir -p "$lib_dir"
        cp "$lib" "$lib_dir/librocksdb.a.tmp"
        mv "$lib_dir/librocksdb.a.tmp" "$lib_dir/librocksdb.a"
        break
      fi
    done
  fi
  if [ -f "$lib_dir/librocksdb.a" ]; then
    export ROCKSDB_LIB_DIR="$lib_dir" ROCKSDB_STATIC=1
  else
    echo "fuzz: no RocksDB $version library in $CARGO_TARGET_DIR to reuse;" \
      "compiling it for the instrumented build (once, 20+ minutes on 2 cores)" >&2
  fi
fi

flags=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  -Cllvm-args=-sanitizer-coverage-stack-depth
  -Cllvm-args=-simplifycfg-branch-fold-threshold=0
  --cfg fuzzing
  -Cdebug-assertions
  -Coverflow-checks
)
# The dev profile (debug assertions, overflow checks), with Cairn's own crates
# optimised like their dependencies. `-p` is safe here: this target dir is the
# fuzz build's alone.
echo "fuzz: building the instrumented targets in $fuzz_dir" >&2
RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR="$fuzz_dir" CARGO_PROFILE_DEV_OPT_LEVEL=3 \
  nice -n 19 cargo build -p cairn-fuzz --bins --target "$triple"
bin="$fuzz_dir/$triple/debug"

# Each target's corpus lives beside the build and grows from run to run; the
# seeds are written afresh each time from the code under test.
corpus="$fuzz_dir/corpus"
logs="$fuzz_dir/logs"
mkdir -p "$logs"
"$bin/fuzz-seeds" "$corpus"

failed=()
for t in "${targets[@]}"; do
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$artifacts" "$corpus/$t"
  log="$logs/$t.log"
  # The node decodes all of this on tokio worker threads, whose stacks are
  # 2 MiB: fuzz on a stack of that size, so deep nesting that would overflow a
  # worker overflows here (CAIRN_FUZZ_STACK_KB changes it, e.g. to look past a
  # known overflow). -timeout: a slow input is a finding too.
  dict=()
  [ -f "$corpus/$t.dict" ] && dict=(-dict="$corpus/$t.dict")
  status=0
  (
    ulimit -s "${CAIRN_FUZZ_STACK_KB:-2048}"
    exec nice -n 10 "$bin/$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${dict[@]}" "$@" "$corpus/$t"
  ) >"$log" 2>&1 || status=$?
  # (A crash while replaying the corpus leaves no coverage line: hence `|| true`.)
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)"
  inputs="$(find "$corpus/$t" -type f | wc -l)"
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $t: ok, ${runs:-?} runs in ${seconds} s (${rate:-?}/s), coverage ${cov:-?}, corpus $inputs inputs"
  else
    echo "fuzz: $t: FAILED (exit $status) after ${runs:-?} runs; log $log; input in $artifacts/" >&2
    grep -E 'panicked at|^thread .* panicked|overflowed its stack|ERROR: libFuzzer|SUMMARY' "$log" | head -5 >&2 || true
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
