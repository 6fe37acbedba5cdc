# The built-in demo guest of 'jhv demo'. Loaded at guest-physical 0; its last page is also mapped
# at 0xfffff000, so that the reset vector (linear 0xfffffff0) jumps to boot16 as on a real PC.
#
# It boots like a PC from real mode, prints on the COM1 serial port, switches straight to long
# mode, drops to ring 3 and does its real work there, where the host may run it natively:
# counts the primes below LIMIT with a sieve. Then it reads a device register over MMIO,
# waits for an interrupt from the host (the interrupt handler runs in ring 0), prints its results
# and stops with INT3, whose ring-0 handler halts.
        .code16
        .text
        .include "long-mode.inc"
        .include "serial.inc"

        .equ    PML4, 0x2000
        .equ    PDPT, 0x3000
        .equ    PD, 0x4000
        .equ    KERNEL_STACK, 0x7000
        .equ    USER_STACK, 0x6000
        .equ    SIEVE, 0x100000
        .equ    LIMIT, 2000000
        .equ    DEVICE_ID, 0x3fe00000   # the host's demo device (no RAM there): reads return its id
        .equ    REPORT, 0x3fe00008      # writes tell the host a number
image_base:

        .org 0x1000
boot16:
        cli
        xor     %ax, %ax
        mov     %ax, %ds
        mov     %ax, %ss
        mov     $KERNEL_STACK, %sp
        mov     $hello16, %si
        call    print16
        lgdtl   gdt_pointer
        mov     %cr4, %eax
        or      $0x620, %eax            # PAE, OSFXSR, OSXMMEXCPT
        mov     %eax, %cr4
        mov     $PML4, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx       # EFER: long mode, NX, syscall
        rdmsr
        or      $0xd01, %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80010001, %eax       # paging, write protect, protected mode: long mode at once
        mov     %eax, %cr0
        ljmpl   $0x08, $boot64

print16:
        PRINT_COM1
        ret

        .code64
boot64:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $KERNEL_STACK, %rsp
        lea     hello64(%rip), %rsi
        call    print64
        lidt    idt_pointer(%rip)
        mov     $0x30, %ax
        ltr     %ax
        mov     $0xc0000081, %ecx       # STAR: SYSRET goes to 0x28|3 (code) and 0x20|3 (stack)
        xor     %eax, %eax
        mov     $0x00180008, %edx
        wrmsr
        lea     user_main(%rip), %rcx
        mov     $0x202, %r11            # IF set in ring 3
        sysretq

print64:                                # any ring: the TSS bitmap lets ring 3 use COM1
        PRINT_COM1
        ret

# ---------------------------------------------------------------- ring 3
user_main:
        mov     $USER_STACK, %rsp
        lea     hello3(%rip), %rsi
        call    print64
        # Sieve of Eratosthenes over [0, LIMIT): one byte per number, 1 = composite.
        mov     $SIEVE, %rdi
        mov     $LIMIT, %rcx
        xor     %eax, %eax
        rep stosb
        mov     $2, %rbx                # candidate
        xor     %r12, %r12              # primes found
        xor     %r13, %r13              # inner-loop iterations, for the host's instruction count
sieve_next:
        cmp     $LIMIT, %rbx
        jae     sieve_done
        cmpb    $0, SIEVE(%rbx)
        jne     sieve_skip
        inc     %r12
        mov     %rbx, %rax
        imul    %rbx, %rax
        cmp     $LIMIT, %rax
        jae     sieve_skip
1:      movb    $1, SIEVE(%rax)
        inc     %r13
        add     %rbx, %rax
        cmp     $LIMIT, %rax
        jb      1b
sieve_skip:
        inc     %rbx
        jmp     sieve_next
sieve_done:
        mov     %r12, REPORT            # tell the host: number of primes
        mov     %r13, REPORT            # and how often the inner loop ran
        lea     waiting(%rip), %rsi
        call    print64
        mov     DEVICE_ID, %rax         # MMIO read: the host's device answers
        mov     %rax, REPORT            # and back; the host then sends its interrupt
1:      cmpb    $0, ticked(%rip)        # wait for the host's interrupt
        je      1b
        lea     goodbye(%rip), %rsi
        call    print64
        int3                            # the #BP handler halts the machine

# ---------------------------------------------------------------- ring 0 handlers
timer_handler:
        push    %rsi
        push    %rdx
        push    %rax
        lea     tick(%rip), %rsi
        call    print64
        movb    $1, ticked(%rip)
        pop     %rax
        pop     %rdx
        pop     %rsi
        iretq

breakpoint_handler:
        lea     halted(%rip), %rsi
        call    print64
1:      hlt
        jmp     1b

# ---------------------------------------------------------------- data
hello16:  .asciz "jhv demo: real mode, switching to long mode\r\n"
hello64:  .asciz "jhv demo: long mode, ring 0\r\n"
hello3:   .asciz "jhv demo: ring 3, sieving the primes below 2000000\r\n"
waiting:  .asciz "jhv demo: waiting for an interrupt\r\n"
tick:     .asciz "jhv demo: interrupt 0x20 handled in ring 0\r\n"
goodbye:  .asciz "jhv demo: done, INT3 to halt\r\n"
halted:   .asciz "jhv demo: halted\r\n"
ticked:   .byte 0

        .balign 8
        GUEST_GDT
gdt_pointer:
        .word   gdt_end - gdt - 1
        .quad   gdt - image_base
idt_pointer:
        .word   idt_end - idt - 1
        .quad   idt - image_base

        .balign 16
idt:                                    # vectors 0-0x20; only #BP (3) and 0x20 have handlers
        .set    vector, 0
        .rept   0x21
        .if     vector == 3
        .word   (breakpoint_handler - image_base) & 0xffff, 0x08
        .byte   0, 0xee                 # DPL 3: INT3 from ring 3 is allowed
        .word   (breakpoint_handler - image_base) >> 16
        .elseif vector == 0x20
        .word   (timer_handler - image_base) & 0xffff, 0x08
        .byte   0, 0x8e
        .word   (timer_handler - image_base) >> 16
        .else
        .word   0, 0, 0, 0              # not present: a stray exception ends in a triple fault
        .endif
        .long   0, 0
        .set    vector, vector + 1
        .endr
idt_end:

tss:
        .long   0
        .quad   KERNEL_STACK            # RSP0
        .quad   0, 0, 0                 # RSP1, RSP2, reserved
        .quad   0, 0, 0, 0, 0, 0, 0     # IST1-7
        .quad   0
        .word   0, io_bitmap - tss
io_bitmap:
        .fill   (COM1_PORT + 8) / 8, 1, 0  # ports 0 .. COM1+7 allowed from ring 3
        .byte   0xff
tss_end:

        IDENTITY_PAGE_TABLES PML4, PDPT, PD

        .org 0x5000
reset_page:                             # also mapped at 0xfffff000
        .org 0x5ff0
        .code16
        ljmp    $0, $boot16             # the reset vector, at 0xfffffff0
        .org 0x6000
