#!/usr/bin/env bash
# Compares triage binaries on the README's warm run by CPU time, which a busy machine
# distorts far less than wall-clock time: each binary runs 10 times per round, the binaries
# alternate round by round, and each keeps its own warm cache.
#
#   bench/compare-warm-run.sh ROUNDS OLD_TRIAGE NEW_TRIAGE...
#
# Run from the repository root. Prints CPU (user+sys) and wall milliseconds per run.
set -euo pipefail
rounds=${1:?usage: bench/compare-warm-run.sh ROUNDS TRIAGE...}
shift
(($# > 0)) || { echo "usage: bench/compare-warm-run.sh ROUNDS TRIAGE..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(run service-unreachable --format json --input vip=10.0.0.1
  --bundle examples/service-unreachable/interception-in-place)
i=0
for bin in "$@"; do
  mkdir -p "$work/cache$i"
  TRIAGE_CACHE_DIR="$work/cache$i" "$bin" "${run[@]}" >/dev/null # warms the cache
  i=$((i + 1))
done
# A binary that compiles with Winch first leaves Cranelift compiling in the background:
# measure the warm runs on Cranelift's code, as every later run of a user's is.
while pgrep -f -- "__compile-builtins" >/dev/null; do sleep 0.5; done
for _ in $(seq "$rounds"); do
  i=0
  for bin in "$@"; do
    /usr/bin/time -o "$work/t" -f "%U %S %e" env TRIAGE_CACHE_DIR="$work/cache$i" bash -c '
      for _ in 1 2 3 4 5 6 7 8 9 10; do "$@" >/dev/null; done' _ "$bin" "${run[@]}"
    echo "$i $(cat "$work/t")"
    i=$((i + 1))
  done
done | awk -v names="$*" 'BEGIN { split(names, n, " ") }
  { cpu[$1] += ($2 + $3) * 100; wall[$1] += $4 * 100; rounds[$1]++ }
  END { for (k = 0; k in cpu; k++)
    printf "%s: CPU %.1f ms/run, wall %.1f ms/run (%d rounds of 10)\n", n[k + 1], cpu[k] / rounds[k], wall[k] / rounds[k], rounds[k] }'
uptime
