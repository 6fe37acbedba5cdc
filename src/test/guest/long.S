# Long-mode test guest, loaded at guest-physical 0 into at least 4 MiB of RAM. It carries its own
# GDT, IDT, TSS (with an I/O bitmap that lets ring 3 use every port) and page tables that
# identity-map the first GiB with 2 MiB user pages. The test loads CR3/GDTR/IDTR/TR and the
# segments through the register API, then starts one of the entry points below:
# k_* run in ring 0 (CS 0x08, SS 0x10), u_* in ring 3 (CS 0x2b, SS 0x23).
# Ring-0 entry points end with HLT; ring-3 ones report through MMIO writes to MMIO_BASE, an
# address with no memory behind it, since HLT is privileged.
        .code64
        .text
        .include "long-mode.inc"
        .equ    MMIO_BASE, 0x10000000
        .equ    IDT_ADDR, 0x3000
        .equ    PML4_ADDR, 0x7000
        .equ    PDPT_ADDR, 0x8000
        .equ    PD_ADDR, 0x9000
        .equ    KERNEL_STACK_TOP, 0xb000
        .equ    USER_STACK_TOP, 0xc000
        .equ    DATA_PAGE, 0x20000
image_base:

# ---------------------------------------------------------------- GDT
        .org 0x1000
        GUEST_GDT

# ---------------------------------------------------------------- interrupts
# Every vector reports itself with OUT 0x80 (vector) and OUT 0x84 (error code, 0 if none).
# Exceptions (vectors below 32) then halt; interrupts return to the interrupted code.
        .org 0x1100
isr_common:
        pop     %rax
        out     %eax, $0x80
        pop     %rax
        out     %eax, $0x84
        cmpq    $32, -16(%rsp)
        jb      1f
        iretq
1:      hlt
        jmp     1b

        .org 0x2000
isr_stubs:
        .set    vector, 0
        .rept   256
        .balign 16
        .if     vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21
        pushq   $vector                 # the CPU pushed an error code
        .else
        pushq   $0
        pushq   $vector
        .endif
        jmp     isr_common
        .set    vector, vector + 1
        .endr

        .org IDT_ADDR
idt:
        .set    vector, 0
        .rept   256
        .word   (isr_stubs - image_base + vector * 16) & 0xffff
        .word   0x08
        .byte   0, 0x8e
        .word   (isr_stubs - image_base + vector * 16) >> 16
        .long   0, 0
        .set    vector, vector + 1
        .endr

# ---------------------------------------------------------------- TSS
        .org 0x4000
tss:
        .long   0
        .quad   KERNEL_STACK_TOP        # RSP0: ring-3 interrupts switch to this stack
        .quad   0, 0, 0
        .quad   0, 0, 0, 0, 0, 0, 0
        .quad   0
        .word   0
        .word   io_bitmap - tss
io_bitmap:
        .fill   8192, 1, 0              # every port allowed from ring 3
        .byte   0xff
tss_end:

# ---------------------------------------------------------------- page tables
        IDENTITY_PAGE_TABLES PML4_ADDR, PDPT_ADDR, PD_ADDR

# ---------------------------------------------------------------- ring-0 entry points
        .org 0x10000
# Sum of squares 1..RDI; OUT 0x10 with the result, then HLT with the result in RAX.
k_sum_squares:
        xor     %eax, %eax
1:      mov     %rdi, %rdx
        imul    %rdx, %rdx
        add     %rdx, %rax
        dec     %rdi
        jnz     1b
        out     %eax, $0x10
        hlt

# MMIO: write RSI to MMIO_BASE, read MMIO_BASE + 8 into RAX, write RAX + 1 to MMIO_BASE + 16.
k_mmio:
        mov     %rsi, MMIO_BASE
        mov     MMIO_BASE + 8, %rax
        inc     %rax
        mov     %rax, MMIO_BASE + 16
        hlt

# MSRs: STAR round trip, then an MSR KVM does not know (read, then write).
k_msr:
        mov     $0xc0000081, %ecx       # STAR := 0x00230010:00000000
        mov     $0x00230010, %edx
        xor     %eax, %eax
        wrmsr
        mov     $0xc0000082, %ecx       # LSTAR (set by the host) to the host via OUT
        rdmsr
        out     %eax, $0x10
        mov     %edx, %eax
        out     %eax, $0x10
        mov     $0x12345, %ecx          # unknown MSR: RDMSR exits to the host
        rdmsr
        out     %eax, $0x10
        mov     %edx, %eax
        out     %eax, $0x10
        mov     $5, %edx                # and WRMSR of 5:6
        mov     $6, %eax
        wrmsr
        hlt

# CPUID of the leaf in EAX: EAX and EBX to the host via OUT 0x10.
k_cpuid:
        cpuid
        out     %eax, $0x10
        mov     %ebx, %eax
        out     %eax, $0x10
        hlt

# 10000 bytes from [RSI] to port 0xe9 with REP OUTSB: one exit per byte on KVM.
k_rep_outs:
        mov     $10000, %rcx
        mov     $0xe9, %dx
        cld
        rep outsb
        hlt

# 4096 bytes from [RSI] to MMIO_BASE with REP MOVSB: one exit per byte on KVM.
k_rep_movs:
        mov     $4096, %rcx
        mov     $MMIO_BASE, %rdi
        cld
        rep movsb
        hlt

# POPCNT, which some hosts' ring-0 emulators refuse.
k_popcnt:
        popcnt  %rax, %rbx
        hlt

# Invalid opcode: with the IDT in place, the #UD handler reports vector 6; without, triple fault.
k_ud2:
        ud2

# A breakpoint: #BP (vector 3) for the guest's IDT, or a #BP exit when the client asks for one.
k_int3:
        int3
        hlt

# Wait for interrupts with IF set; each one is reported by the handler.
k_wait:
        sti
1:      jmp     1b

# ---------------------------------------------------------------- ring-3 entry points
        .org 0x18000
# Sum 1..RDI natively, then report it (MMIO write to MMIO_BASE).
u_sum:
        xor     %eax, %eax
1:      add     %rdi, %rax
        dec     %rdi
        jnz     1b
        mov     %rax, MMIO_BASE
        jmp     u_sum

# Spin forever, counting in RAX.
u_spin:
        inc     %rax
        jmp     u_spin

# Store RSI at [RDI], read it back and report the value read (MMIO write to MMIO_BASE).
u_store:
        mov     %rsi, (%rdi)
        mov     (%rdi), %rax
        mov     %rax, MMIO_BASE
        jmp     u_store

# Load [RDI] and report it.
u_load:
        mov     (%rdi), %rax
        mov     %rax, MMIO_BASE
        jmp     u_load

# FP state: report XMM0 (low, high) and MXCSR, then put RSI into XMM1 and report done.
u_fp:
        movq    %xmm0, %rax
        mov     %rax, MMIO_BASE
        movhlps %xmm0, %xmm2
        movq    %xmm2, %rax
        mov     %rax, MMIO_BASE + 8
        stmxcsr USER_STACK_TOP - 8
        mov     USER_STACK_TOP - 8, %eax
        mov     %rax, MMIO_BASE + 16
        movq    %rsi, %xmm1
        mov     %rsi, MMIO_BASE + 24
1:      jmp     1b

# Port I/O from ring 3 through the TSS I/O bitmap.
u_out:
        mov     %rsi, %rax
        out     %al, $0xe9
        in      $0xe9, %al
        mov     %rax, MMIO_BASE
1:      jmp     1b

# Read one qword every RDX bytes from RDI up to RSI; then report how many reads were made.
u_scan:
        xor     %rcx, %rcx
1:      mov     (%rdi), %rax
        inc     %rcx
        add     %rdx, %rdi
        cmp     %rsi, %rdi
        jb      1b
        mov     %rcx, MMIO_BASE + 8
2:      jmp     2b

# Every store size to MMIO: 1, 2, 4, 8 bytes, then 16 (MOVDQU).
u_sizes:
        mov     $0x1122334455667788, %rax
        movb    %al, MMIO_BASE
        movw    %ax, MMIO_BASE
        movl    %eax, MMIO_BASE
        movq    %rax, MMIO_BASE
        movq    %rax, %xmm0
        movdqu  %xmm0, MMIO_BASE
1:      jmp     1b

# A breakpoint in ring 3.
u_int3:
        int3
        mov     %rax, MMIO_BASE
        jmp     u_int3

# Report the TSC (RDTSC) twice.
u_rdtsc:
        rdtsc
        shl     $32, %rdx
        or      %rdx, %rax
        mov     %rax, MMIO_BASE
        jmp     u_rdtsc

# ---------------------------------------------------------------- data
        .org DATA_PAGE
data:
        .quad   0x1111111111111111
        .org DATA_PAGE + 0x1000
