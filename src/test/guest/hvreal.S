# Real-mode guest for the conformance tests of the hv_* facade, loaded at guest-physical 0.
# Each entry point is one test; the client emulates every exit as a Hypervisor.framework client
# would. Segments: CS = DS = ES = SS = 0, SP = 0x7000.
        .code16
        .text
        .org 0x1000
io_test:
        mov     $0x3f8, %dx
        mov     $0x41, %al
        out     %al, %dx                # exit 30, qualification 0x03f80000, length 1
        in      $0x60, %al              # exit 30, qualification 0x00600048, length 2
        out     %al, $0x61              # echoes what the client gave: qualification 0x00610040
        hlt                             # exit 12, length 1

mmio_test:
        mov     $0xd000, %ax
        mov     %ax, %es
        mov     %es:0x10, %al           # EPT violation, read of 0xd0010
        inc     %al
        mov     %al, %es:0x20           # EPT violation, write of 0xd0020
        hlt

msr_test:
        mov     $0xc0000081, %ecx       # STAR: not native, so RDMSR exits (31)
        rdmsr
        out     %eax, $0x10
        mov     $0x174, %ecx            # SYSENTER_CS: made native by the client, no exit
        rdmsr
        out     %eax, $0x10
        mov     $0xc0000081, %ecx
        mov     $0x12345678, %eax
        xor     %edx, %edx
        wrmsr                           # exit 32
        hlt

irq_test:
        movw    $irq_handler, 0x20 * 4  # IVT entry 0x20 -> 0000:irq_handler
        movw    $0, 0x20 * 4 + 2
        sti
1:      jmp     1b
irq_handler:
        mov     $0x20, %al
        out     %al, $0x21              # the handler ran: exit 30 on port 0x21
        iret

window_test:
        cli
        mov     $20, %cx
1:      dec     %cx
        jnz     1b
        sti
        nop
        hlt                             # with interrupt-window exiting: exit 7 before this HLT

soft_test:
        movw    $soft_handler, 0x21 * 4 # IVT entry 0x21 -> 0000:soft_handler
        movw    $0, 0x21 * 4 + 2
        out     %al, $0x23              # the client injects INT 0x21 here, as a 2-byte instruction
soft_point:
        nop                             # the two bytes the software interrupt returns past
        nop
        hlt
soft_handler:
        mov     $0x21, %al
        out     %al, $0x22
        iret

string_test:
        cld
        mov     $message, %si
        mov     $4, %cx
        mov     $0xe9, %dx
        rep outsb                       # exit 30: string, REP, port 0xe9
        mov     $buffer, %di
        mov     $4, %cx
        rep insb                        # exit 30: string, REP, IN
        hlt
message:
        .ascii  "jhv!"
buffer:
        .long   0

        .org 0x3000
reset_code:                             # copied by the test to 0xfffffff0 (the reset vector)
        mov     $0x52, %al
        out     %al, $0x80
        hlt
