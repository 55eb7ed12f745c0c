#!/usr/bin/env bash
# Fleet benchmark: `triage run service-unreachable` on 1,000 bundle targets in one run.
# Prints runs per second (hyperfine) and the peak RSS of one run (/usr/bin/time).
# Usage: host/benches/fleet.sh [JOBS]   (needs hyperfine and GNU time: apt-get install hyperfine time)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
jobs=${1:-16}
cargo build --release -q -p triage --manifest-path "$root/Cargo.toml"
bin="$root/target/release/triage"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 1000); do
  src=interception-in-place
  if (( i % 2 )); then src=interception-missing; fi
  cp -r "$root/examples/service-unreachable/$src" "$work/vm-$i"
  echo "vm-$i" >> "$work/targets.txt"
done
export TRIAGE_CACHE_DIR="$work/cache"
cmd="$bin run service-unreachable --targets $work/targets.txt --input vip=10.0.0.1 --jobs $jobs --format json"
$cmd > /dev/null || true   # fills the component cache
hyperfine --warmup 1 --runs 5 --ignore-failure "$cmd > /dev/null"
/usr/bin/time -f 'one run: peak RSS %M KiB, wall %e s' $cmd > /dev/null || true
