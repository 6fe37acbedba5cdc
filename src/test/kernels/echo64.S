# A Multiboot kernel in an ELF64 file: Multiboot enters it in 32-bit protected mode all the same.
# It waits for a byte on COM1 (polling the line status), prints it back in upper case after a
# greeting, reads the PIT's counter twice to check that it moves, and exits with code 7 (status 15)
# or, if the timer is stuck, with code 1.
        .code32
        .text
        .include "serial.inc"
        .globl  _start
        .align  4
        .long   0x1badb002, 0, -0x1badb002
_start:
        mov     $greeting, %esi
        PRINT_COM1
        mov     $0x3fd, %dx             # line status: wait for data ready
3:      inb     %dx, %al
        test    $1, %al
        jz      3b
        mov     $0x3f8, %dx
        inb     %dx, %al
        sub     $0x20, %al              # to upper case
        outb    %al, %dx
        mov     $10, %al
        outb    %al, %dx
        mov     $0, %al                 # PIT channel 0: latch, read low and high byte
        out     %al, $0x43
        in      $0x40, %al
        mov     %al, %bl
        in      $0x40, %al
        mov     %al, %bh
        mov     $2000, %ecx             # wait a little
4:      dec     %ecx
        jnz     4b
        mov     $0, %al
        out     %al, $0x43
        in      $0x40, %al
        mov     %al, %cl
        in      $0x40, %al
        mov     %al, %ch
        cmp     %bx, %cx
        je      stuck
        mov     $7, %al
        out     %al, $0xf4
        hlt
stuck:
        mov     $1, %al
        out     %al, $0xf4
        hlt
greeting:
        .asciz  "echo64: "
