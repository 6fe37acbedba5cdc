#!/usr/bin/env bash
# Assembles guest code kept as readable source, with GNU binutils only.
#
#   assemble-guests.sh SRC_DIR OUT_DIR            every SRC_DIR/*.S into OUT_DIR/NAME.bin, a flat image
#                                                 whose first byte belongs at guest-physical 0, and
#                                                 OUT_DIR/NAME.sym, its symbols ("hex-address name")
#   assemble-guests.sh --kernels SRC_DIR OUT_DIR  every SRC_DIR/*.S into OUT_DIR/NAME.elf, linked at
#                                                 1 MiB as Multiboot kernels are: ELF64 for NAME*64.S
#                                                 (its entry code is still 32-bit), else ELF32
#
# Sources may .include the shared building blocks in src/main/guest (long-mode.inc).
set -euo pipefail
kernels=false
if [ "${1:-}" = "--kernels" ]; then
  kernels=true
  shift
fi
src_dir=$1
out_dir=$2
shared=$(cd "$(dirname "$0")/../src/main/guest" && pwd)
for tool in as ld objcopy nm; do
  command -v "$tool" >/dev/null || { echo "assemble-guests: '$tool' missing (Debian: apt-get install binutils)" >&2; exit 1; }
done
mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
link="ld --no-warn-rwx-segments -N"
for source in "$src_dir"/*.S; do
  [ -e "$source" ] || continue
  name=$(basename "$source" .S)
  if ! $kernels; then
    as --64 -I "$src_dir" -I "$shared" -o "$work/$name.o" "$source"
    $link -m elf_x86_64 -e 0 -Ttext=0 -o "$work/$name.elf" "$work/$name.o"
    objcopy -O binary "$work/$name.elf" "$out_dir/$name.bin"
    nm "$work/$name.elf" | awk '$2 ~ /^[tTdDbBaA]$/ { print $1, $3 }' > "$out_dir/$name.sym"
  elif [[ $name == *64 ]]; then
    as --64 -I "$src_dir" -I "$shared" -o "$work/$name.o" "$source"
    $link -m elf_x86_64 -e _start -Ttext=0x100000 -o "$out_dir/$name.elf" "$work/$name.o"
  else
    as --32 -I "$src_dir" -I "$shared" -o "$work/$name.o" "$source"
    $link -m elf_i386 -e _start -Ttext=0x100000 -o "$out_dir/$name.elf" "$work/$name.o"
  fi
done
