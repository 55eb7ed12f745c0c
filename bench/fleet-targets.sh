#!/usr/bin/env bash
# Writes a targets file of COUNT bundle targets into DIR (default 100000 into
# /tmp/fleet-COUNT): each target is its own name, a symlink to one of the two
# examples/service-unreachable bundles (even positions the VM with interception missing,
# odd ones the healthy VM), so a fleet run over it has COUNT/2 failing targets. Perl makes
# the links: a process per link (ln) takes minutes for 100,000.
#
#   bench/fleet-targets.sh 100000 /tmp/fleet100k
#   /usr/bin/time -v triage run service-unreachable --targets /tmp/fleet100k/targets.txt \
#       --input vip=10.0.0.1 --jobs 16 -o jsonl > /tmp/fleet100k/out.jsonl
set -euo pipefail
count=${1:-100000}
dir=${2:-/tmp/fleet-$count}
examples=$(cd "$(dirname "$0")/../examples/service-unreachable" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
perl -e '
  my ($n, $dir, $ex) = @ARGV;
  open(my $out, ">", "$dir/targets.txt") or die "$dir/targets.txt: $!\n";
  for my $i (0 .. $n - 1) {
    my $case = $i % 2 ? "interception-in-place" : "interception-missing";
    my $link = "$dir/vm-$i";
    unlink $link;
    symlink("$ex/$case", $link) or die "$link: $!\n";
    print $out "$link\n";
  }
  close($out) or die "$dir/targets.txt: $!\n";
' "$count" "$dir" "$examples"
echo "$dir/targets.txt: $count targets" >&2
