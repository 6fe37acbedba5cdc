#!/usr/bin/env bash
# Wall time of booting a kernel that prints one line and exits: 'jhv run' against
# 'qemu-system-x86_64 -accel kvm -kernel', same kernel, same host, alternating, N runs each.
# Installs QEMU (Debian's qemu-system-x86) if it is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
if ! command -v qemu-system-x86_64 >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$here/tools/assemble-guests.sh" --kernels "$here/src/test/kernels" "$work"
kernel=$work/hello.elf
"$here/jhv" info >/dev/null   # builds the jar if needed, outside the timed runs

jhv_out=$("$here/jhv" run "$kernel" || true)
qemu_out=$(qemu-system-x86_64 -accel kvm -display none -serial stdio -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128M -kernel "$kernel" 2>/dev/null || true)
[ "$jhv_out" = "$qemu_out" ] || { echo "different output: jhv '$jhv_out', QEMU '$qemu_out'" >&2; exit 1; }
echo "both print: $jhv_out"

time_ms() {   # runs the command, prints its wall time in ms
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}
jhv_times=() qemu_times=()
for _ in $(seq "$runs"); do
  jhv_times+=("$(time_ms "$here/jhv" run "$kernel")")
  qemu_times+=("$(time_ms qemu-system-x86_64 -accel kvm -display none -serial stdio -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128M -kernel "$kernel")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
jhv_median=$(median "${jhv_times[@]}")
qemu_median=$(median "${qemu_times[@]}")
echo "jhv run:  median ${jhv_median} ms  (runs: ${jhv_times[*]})"
echo "QEMU:     median ${qemu_median} ms  (runs: ${qemu_times[*]})"
awk -v j="$jhv_median" -v q="$qemu_median" 'BEGIN { printf "jhv/QEMU: %.2f\n", j / q }'
