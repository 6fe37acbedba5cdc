# The guest of the example VMM (examples/java/dev/jhv/examples/TinyVmm.java), in real mode, loaded
# at guest-physical 0 and started at 0x1000 with all segments 0.
        .code16
        .text
        .include "serial.inc"
        .equ    EXIT_PORT, 0xf4
        .org 0x1000
start:
        mov     $0x7000, %sp
        mov     $hello, %si
        call    print
        movw    $timer, 0x20 * 4        # IVT: vector 0x20 -> timer
        movw    $0, 0x20 * 4 + 2
        mov     $0xd000, %ax            # the VMM's device page
        mov     %ax, %es
        mov     %es:0, %ax              # MMIO read: device id
        mov     %ax, device_id
        mov     %es:2, %al              # another register: the number of ticks to wait for
        mov     %al, %es:4              # MMIO write: acknowledge
        mov     %al, ticks_wanted
        sti
wait:
        hlt                             # the VMM injects its timer interrupt while we sleep
        mov     ticks, %al
        cmp     ticks_wanted, %al
        jb      wait
        mov     $done, %si
        call    print
        mov     ticks, %al
        out     %al, $EXIT_PORT         # leave with the tick count as the status

print:                                  # DS:SI, NUL-terminated, to COM1
        PRINT_COM1
        ret

timer:
        incb    ticks
        iret

hello:  .asciz  "tiny VMM guest: hello\n"
done:   .asciz  "tiny VMM guest: three ticks\n"
ticks:  .byte   0
ticks_wanted: .byte 0
device_id: .word 0
