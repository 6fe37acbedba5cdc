# The guest of 'jhv bench' and of its C reference (bench/native/kvmbench.c): loops that exit as
# fast as the guest can, in the modes the benchmarks compare. Loaded at guest-physical 0; the
# host sets the registers (long mode through CR0/CR3/CR4/EFER, the GDT, TR and segments).
        .code16
        .text
        .include "long-mode.inc"
        .equ    MMIO, 0x10000000         # no memory there: every store exits
        .equ    PML4, 0x3000
        .equ    PDPT, 0x4000
        .equ    PD, 0x5000
        .equ    KERNEL_STACK_TOP, 0x7000
        .equ    USER_STACK_TOP, 0x8000
image_base:

        .org 0x1000
# Real mode (emulated on hosts without VT-x/AMD-V): one OUT per iteration.
out_loop16:
        out     %al, $0x10
        jmp     out_loop16

# Real mode: print one line on COM1 and leave through isa-debug-exit; the cold-start benchmark.
hello16:
        mov     $hello_text, %si
        mov     $0x3f8, %dx
1:      lodsb
        test    %al, %al
        jz      2f
        out     %al, %dx
        jmp     1b
2:      xor     %al, %al
        out     %al, $0xf4
        hlt
hello_text:
        .asciz  "hello\n"

        .code64
# Long mode, ring 3 (native wherever KVM can run guest user code): one MMIO store per iteration.
mmio_loop:
        mov     %rax, MMIO
        jmp     mmio_loop

# Long mode, ring 3: count down RCX, then report through MMIO; the compute benchmark.
count_loop:
1:      dec     %rcx
        jnz     1b
        mov     %rax, MMIO
        jmp     count_loop

# Long mode, ring 3: write a byte into every 4 KiB page from RDI up to RSI, then report.
touch_loop:
1:      movb    %al, (%rdi)
        add     $4096, %rdi
        cmp     %rsi, %rdi
        jb      1b
        mov     %rax, MMIO
2:      jmp     2b

        .balign 8
        GUEST_GDT

tss:
        .long   0
        .quad   KERNEL_STACK_TOP
        .quad   0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        .quad   0
        .word   0, tss_end - tss
tss_end:

        IDENTITY_PAGE_TABLES PML4, PDPT, PD
        .org 0x8000
