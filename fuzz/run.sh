#!/usr/bin/env bash
# Builds every fuzz target (cargo-fuzz, nightly) and runs each for SECONDS_PER_TARGET (default 60), one after
# the other, starting from the committed seeds in corpus/<target>/ (never written to: new inputs go to
# target/corpus/<target>/). Fails if any target crashes, panics, leaks past the RSS limit or hangs; the
# failing input is in artifacts/<target>/ and a `cargo fuzz run <target> <file>` line reproduces it.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs `cargo +nightly` and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-60}"
shift || true
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi

# Our own target directory, whatever the caller's CARGO_TARGET_DIR says.
unset CARGO_TARGET_DIR
# No sanitizer: the workspace forbids unsafe code, so ASan would mostly slow the runs down (about 2-3x);
# panics, arithmetic overflow (debug assertions on), hangs and memory blow-ups are what is looked for.
flags=(--sanitizer none --debug-assertions)

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets"
cargo +nightly fuzz build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "corpus/$t"
  # HTTP bodies may be as large as the server accepts (64 KiB); other inputs stay small.
  case "$t" in
    oauth_forms | token_review) max_len=65536 ;;
    config_load) max_len=16384 ;;
    *) max_len=4096 ;;
  esac
  echo "== $t: ${secs}s"
  log="target/$t.log"
  if cargo +nightly fuzz run "${flags[@]}" "$t" "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$secs" -max_len="$max_len" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -n1)
    cov=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' || true)
    echo "   ok: ${execs:-?} executions, ${cov:-no coverage line}"
  else
    echo "   FAILED; last lines of $log:"
    tail -n 40 "$log" | sed 's/^/   | /'
    failed+=("$t")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${secs}s each without a failure"
