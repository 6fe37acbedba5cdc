package dev.jhv.hv;

import static dev.jhv.hv.Hv.*;
import static dev.jhv.hv.HvSession.cap2ctrl;

/** Puts the facade's vCPU into long mode for the {@code long} test guest, through VMCS writes only. */
final class LongModeVmcs {
    private LongModeVmcs() {}

    static void ring0(HvSession s, String entry) {
        enter(s, entry, 0x08, 0x10, 0, s.symbol("KERNEL_STACK_TOP"));
    }

    static void ring3(HvSession s, String entry) {
        enter(s, entry, 0x2b, 0x23, 3, s.symbol("USER_STACK_TOP"));
    }

    private static void enter(HvSession s, String entry, int cs, int ds, int dpl, long stack) {
        s.vmcs(VMCS_CTRL_VMENTRY_CONTROLS, cap2ctrl(s.capability(HV_VMX_CAP_ENTRY), VMENTRY_GUEST_IA32E));
        s.vmcs(VMCS_CTRL_CPU_BASED, cap2ctrl(s.capability(HV_VMX_CAP_PROCBASED), CPU_BASED_HLT));
        s.vmcs(VMCS_GUEST_CR3, s.symbol("PML4_ADDR"));
        s.vmcs(VMCS_GUEST_CR4, 0x2620);                      // PAE, OSFXSR, OSXMMEXCPT (+ VMXE, as clients write it)
        s.vmcs(VMCS_GUEST_IA32_EFER, 0xd01);                 // SCE, LME, LMA, NXE
        s.vmcs(VMCS_GUEST_CR0, 0x80010033L);                 // PG, WP, NE, ET, MP, PE
        s.vmcs(VMCS_GUEST_GDTR_BASE, s.symbol("gdt"));
        s.vmcs(VMCS_GUEST_GDTR_LIMIT, s.symbol("gdt_end") - s.symbol("gdt") - 1);
        s.vmcs(VMCS_GUEST_IDTR_BASE, s.symbol("idt"));
        s.vmcs(VMCS_GUEST_IDTR_LIMIT, 256 * 16 - 1);
        s.vmcs(VMCS_GUEST_TR, 0x30);
        s.vmcs(VMCS_GUEST_TR_BASE, s.symbol("tss"));
        s.vmcs(VMCS_GUEST_TR_LIMIT, s.symbol("tss_end") - s.symbol("tss") - 1);
        s.vmcs(VMCS_GUEST_TR_AR, 0x8b);
        s.vmcs(VMCS_GUEST_LDTR_AR, 0x10000);
        s.vmcs(VMCS_GUEST_CS, cs);
        s.vmcs(VMCS_GUEST_CS_BASE, 0);
        s.vmcs(VMCS_GUEST_CS_LIMIT, 0xffffffffL);
        s.vmcs(VMCS_GUEST_CS_AR, 0xa09b | dpl << 5);
        for (int[] segment : new int[][] {{VMCS_GUEST_SS, VMCS_GUEST_SS_BASE, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_SS_AR},
            {VMCS_GUEST_DS, VMCS_GUEST_DS_BASE, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_DS_AR},
            {VMCS_GUEST_ES, VMCS_GUEST_ES_BASE, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_ES_AR},
            {VMCS_GUEST_FS, VMCS_GUEST_FS_BASE, VMCS_GUEST_FS_LIMIT, VMCS_GUEST_FS_AR},
            {VMCS_GUEST_GS, VMCS_GUEST_GS_BASE, VMCS_GUEST_GS_LIMIT, VMCS_GUEST_GS_AR}}) {
            s.vmcs(segment[0], ds);
            s.vmcs(segment[1], 0);
            s.vmcs(segment[2], 0xffffffffL);
            s.vmcs(segment[3], 0xc093 | dpl << 5);
        }
        s.vmcs(VMCS_GUEST_RFLAGS, 0x2);
        s.vmcs(VMCS_GUEST_RSP, stack);
        s.vmcs(VMCS_GUEST_RIP, s.symbol(entry));
    }
}
