package dev.jhv;

/** Puts a vCPU into long mode for the {@code long} test guest, through the register API only. */
final class LongMode {
    static final long CR0_PE_MP_ET_NE_WP_PG = 0x80010033L;
    static final long CR4_PAE_OSFXSR_OSXMMEXCPT = 0x620;
    static final long EFER_SCE_LME_LMA_NXE = 0xd01;

    private LongMode() {}

    static void enter(Vcpu vcpu, TestGuest guest, int ring, String entry, long stack) {
        vcpu.set(Register.CR3, guest.symbol("PML4_ADDR"));
        vcpu.set(Register.CR4, CR4_PAE_OSFXSR_OSXMMEXCPT);
        vcpu.set(Register.CR0, CR0_PE_MP_ET_NE_WP_PG);
        vcpu.writeMsr(Vcpu.MSR_EFER, EFER_SCE_LME_LMA_NXE);
        vcpu.set(Register.GDT_BASE, guest.symbol("gdt"));
        vcpu.set(Register.GDT_LIMIT, guest.symbol("gdt_end") - guest.symbol("gdt") - 1);
        vcpu.set(Register.IDT_BASE, guest.symbol("idt"));
        vcpu.set(Register.IDT_LIMIT, 256 * 16 - 1);
        vcpu.setSegment(SegmentRegister.TR, new Segment(0x30, guest.symbol("tss"),
                (int) (guest.symbol("tss_end") - guest.symbol("tss") - 1), 0x8b));
        vcpu.setSegment(SegmentRegister.LDTR, new Segment(0, 0, 0, Segment.AR_UNUSABLE));
        Segment code = ring == 0 ? Segment.code64(0x08, 0) : Segment.code64(0x2b, 3);
        Segment data = ring == 0 ? Segment.data32(0x10, 0) : Segment.data32(0x23, 3);
        vcpu.setSegment(SegmentRegister.CS, code);
        for (SegmentRegister register : new SegmentRegister[] {SegmentRegister.SS, SegmentRegister.DS,
            SegmentRegister.ES, SegmentRegister.FS, SegmentRegister.GS}) {
            vcpu.setSegment(register, data);
        }
        vcpu.set(Register.RFLAGS, 0x2);
        vcpu.set(Register.RSP, stack);
        vcpu.set(Register.RIP, guest.symbol(entry));
    }

    static void ring0(Vcpu vcpu, TestGuest guest, String entry) {
        enter(vcpu, guest, 0, entry, guest.symbol("KERNEL_STACK_TOP"));
    }

    static void ring3(Vcpu vcpu, TestGuest guest, String entry) {
        enter(vcpu, guest, 3, entry, guest.symbol("USER_STACK_TOP"));
    }
}
