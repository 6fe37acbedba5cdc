# A Multiboot test kernel in the style of the ones people boot with qemu -kernel: it prints on
# COM1 (polling the line status, as real drivers do), reads its command line, memory sizes, memory
# map and first module from the Multiboot information, reads fw_cfg's signature and RAM size,
# and leaves through isa-debug-exit with code 42 (status 85).
        .code32
        .text
        .globl  _start
        .equ    COM1, 0x3f8
        .align  4
multiboot_header:
        .long   0x1badb002
        .long   0x00000003              # modules page-aligned, memory information wanted
        .long   -(0x1badb002 + 0x00000003)

_start:
        mov     $stack_top, %esp
        cmp     $0x2badb002, %eax
        jne     bad_magic
        mov     %ebx, %edi              # the Multiboot information, kept in EDI

        mov     $hello, %esi
        call    print

        mov     $cmdline_label, %esi    # flags bit 2: the command line
        call    print
        mov     16(%edi), %esi
        call    print
        call    newline

        mov     $upper_label, %esi      # flags bit 0: memory above 1 MiB, in KiB
        call    print
        mov     8(%edi), %eax
        call    print_decimal
        call    newline

        mov     $mmap_label, %esi       # flags bit 6: the memory map, 24 bytes an entry here
        call    print
        mov     44(%edi), %eax
        xor     %edx, %edx
        mov     $24, %ecx
        div     %ecx
        call    print_decimal
        call    newline

        mov     $module_label, %esi     # flags bit 3: the first module's string and first line
        call    print
        mov     20(%edi), %eax
        call    print_decimal
        mov     $space, %esi
        call    print
        mov     24(%edi), %ebx
        mov     8(%ebx), %esi
        call    print
        mov     $colon, %esi
        call    print
        mov     0(%ebx), %esi
        call    print_line
        call    newline

        mov     $fwcfg_label, %esi      # fw_cfg: signature (key 0), then RAM size (key 3) in MiB
        call    print
        xor     %eax, %eax
        mov     $0x510, %dx
        outw    %ax, %dx
        mov     $4, %ecx
1:      mov     $0x511, %dx
        inb     %dx, %al
        call    putc
        dec     %ecx
        jnz     1b
        mov     $space, %esi
        call    print
        mov     $3, %eax
        mov     $0x510, %dx
        outw    %ax, %dx
        mov     $0x511, %dx
        xor     %ebx, %ebx
        mov     $4, %ecx                # the low 32 bits, little-endian
2:      inb     %dx, %al
        movzbl  %al, %eax
        shl     $24, %eax
        shr     $8, %ebx
        or      %eax, %ebx
        dec     %ecx
        jnz     2b
        mov     %ebx, %eax
        shr     $20, %eax
        call    print_decimal
        mov     $mib, %esi
        call    print

        mov     $bye, %esi
        call    print
        mov     $42, %al
        out     %al, $0xf4              # isa-debug-exit: status (42 << 1) | 1 = 85
        hlt

bad_magic:
        mov     $1, %al
        out     %al, $0xf4
        hlt

# ESI: NUL-terminated text
print:
        lodsb
        test    %al, %al
        jz      1f
        call    putc
        jmp     print
1:      ret

# ESI: text up to a newline or NUL
print_line:
        lodsb
        test    %al, %al
        jz      1f
        cmp     $10, %al
        je      1f
        call    putc
        jmp     print_line
1:      ret

newline:
        mov     $10, %al
        jmp     putc

# AL to COM1, once the transmitter is empty
putc:
        push    %edx
        push    %eax
        mov     $COM1 + 5, %dx
1:      inb     %dx, %al
        test    $0x20, %al
        jz      1b
        pop     %eax
        mov     $COM1, %dx
        outb    %al, %dx
        pop     %edx
        ret

# EAX in decimal
print_decimal:
        push    %ebx
        mov     $digits_end, %ebx
        movb    $0, (%ebx)
        mov     $10, %ecx
1:      xor     %edx, %edx
        div     %ecx
        add     $'0', %dl
        dec     %ebx
        mov     %dl, (%ebx)
        test    %eax, %eax
        jnz     1b
        mov     %ebx, %esi
        call    print
        pop     %ebx
        ret

        .data
hello:          .asciz "mbtest: hello from protected mode\n"
cmdline_label:  .asciz "cmdline: "
upper_label:    .asciz "mem_upper KiB: "
mmap_label:     .asciz "mmap entries: "
module_label:   .asciz "modules: "
fwcfg_label:    .asciz "fw_cfg: "
mib:            .asciz " MiB\n"
bye:            .asciz "mbtest: exit 42\n"
space:          .asciz " "
colon:          .asciz ": "
digits:         .space 12
digits_end:     .byte 0

        .bss
        .space  4096
stack_top:
