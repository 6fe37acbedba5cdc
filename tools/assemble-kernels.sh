#!/usr/bin/env bash
# Builds every test kernel SRC_DIR/*.S into OUT_DIR/NAME.elf: an ELF linked at 1 MiB, as Multiboot
# kernels are, for 'jhv run' to boot. Kernels named *64.S go in an ELF64 container (their entry
# code is still 32-bit, as Multiboot starts it), the others in ELF32.
set -euo pipefail
src_dir=$1
out_dir=$2
for tool in as ld; do
  command -v "$tool" >/dev/null || { echo "assemble-kernels: '$tool' missing (Debian: apt-get install binutils)" >&2; exit 1; }
done
mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for source in "$src_dir"/*.S; do
  [ -e "$source" ] || continue
  name=$(basename "$source" .S)
  if [[ $name == *64 ]]; then
    as --64 -o "$work/$name.o" "$source"
    ld -m elf_x86_64 --no-warn-rwx-segments -N -e _start -Ttext=0x100000 -o "$out_dir/$name.elf" "$work/$name.o"
  else
    as --32 -o "$work/$name.o" "$source"
    ld -m elf_i386 --no-warn-rwx-segments -N -e _start -Ttext=0x100000 -o "$out_dir/$name.elf" "$work/$name.o"
  fi
done
