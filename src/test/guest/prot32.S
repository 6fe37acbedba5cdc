# 32-bit protected-mode test guest (flat segments, no paging), loaded at guest-physical 0. The test
# sets CS/DS/SS to flat 32-bit segments, EIP = pm_start, ESP = 0x7000, ECX = n.
        .code32
        .text
        .org 0x1000
pm_start:
        mov     $1, %eax                # factorial of n (ECX) by multiplication
1:      imul    %ecx, %eax
        dec     %ecx
        jnz     1b
        mov     %eax, pm_result
        out     %eax, $0x10             # OUT 0x10, 4 bytes: n!
        mov     0xd0000000, %ebx        # MMIO read from unmapped guest-physical memory
        lea     1(%ebx), %edx
        mov     %edx, 0xd0000008        # MMIO write: what was read, plus one
        hlt

        .balign 4
pm_result:
        .long   0
