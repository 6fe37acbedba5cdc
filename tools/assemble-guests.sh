#!/usr/bin/env bash
# Assembles every guest source SRC_DIR/*.S into OUT_DIR/NAME.bin (a flat image whose first byte
# belongs at guest-physical address 0) and OUT_DIR/NAME.sym (its symbols, "hex-address name").
# Guest code stays readable source in the repository; only GNU binutils are needed to build it.
set -euo pipefail
src_dir=$1
out_dir=$2
for tool in as ld objcopy nm; do
  command -v "$tool" >/dev/null || { echo "assemble-guests: '$tool' missing (Debian: apt-get install binutils)" >&2; exit 1; }
done
mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for source in "$src_dir"/*.S; do
  [ -e "$source" ] || continue
  name=$(basename "$source" .S)
  as --64 -I "$src_dir" -o "$work/$name.o" "$source"
  ld -m elf_x86_64 --no-warn-rwx-segments -N -e 0 -Ttext=0 -o "$work/$name.elf" "$work/$name.o"
  objcopy -O binary "$work/$name.elf" "$out_dir/$name.bin"
  nm "$work/$name.elf" | awk '$2 ~ /^[tTdDbBaA]$/ { print $1, $3 }' > "$out_dir/$name.sym"
done
