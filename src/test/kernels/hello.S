# The smallest Multiboot kernel worth booting: one line on COM1, then isa-debug-exit with code 0
# (status 1). 'bench/qemu-vs-jhv.sh' boots it with jhv and with QEMU.
        .code32
        .text
        .include "serial.inc"
        .globl  _start
        .align  4
        .long   0x1badb002, 0, -0x1badb002
_start:
        mov     $message, %esi
        PRINT_COM1
        xor     %al, %al
        out     %al, $0xf4
        hlt
message:
        .asciz  "hello from a multiboot kernel\n"
