# Real-mode test guest. Loaded at guest-physical 0; the test starts it at rm_start with CS = DS =
# ES = SS = 0 and SP = 0x7000. Every step is an exit the test checks.
        .code16
        .text
        .org 0x1000
rm_start:
        mov     $10, %cx                # sum 10 + 9 + ... + 1 = 55 = 0x37
        xor     %ax, %ax
1:      add     %cx, %ax
        dec     %cx
        jnz     1b
        mov     $0x3f8, %dx
        out     %al, %dx                # OUT 0x3f8, 1 byte, 0x37
        in      $0x60, %al              # IN 0x60: the host answers
        mov     %al, %bl
        add     $1, %bl
        mov     %bl, rm_result          # answer + 1 lands in memory
        mov     $0xbeef, %ax
        out     %ax, $0x62              # OUT 0x62, 2 bytes
        cld
        mov     $rm_message, %si
        mov     $4, %cx
        mov     $0xe9, %dx
        rep outsb                       # string OUT: one exit per byte
        mov     $rm_buffer, %di
        mov     $4, %cx
        mov     $0xe8, %dx
        rep insb                        # string IN: one exit for all four bytes
        mov     rm_buffer, %eax
        not     %eax
        mov     %eax, rm_result + 4     # complement of what IN gave, as the test can check
        hlt

rm_message:
        .ascii  "jhv!"
        .balign 4
rm_result:
        .long   0, 0
rm_buffer:
        .long   0
