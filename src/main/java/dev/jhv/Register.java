package dev.jhv;

/**
 * The vCPU registers, in the order (and so with the ids) of Apple's {@code hv_x86_reg_t}:
 * {@code Register.values()[id]} is register {@code id}.
 *
 * <p>Segment registers ({@link #CS} … {@link #GS}, {@link #LDTR}, {@link #TR}) are the selector
 * only; whole segments are read and written with {@link Vcpu#segment} and {@link Vcpu#setSegment}.
 * {@link #TPR} is the task-priority register in the APIC layout (priority in bits 7:4, that is
 * CR8 shifted left by 4). {@link #DR4} and {@link #DR5} alias DR6 and DR7, as on hardware with
 * CR4.DE clear. {@link #CR1} is reserved: it reads 0 and takes only 0.
 */
public enum Register {
    RIP, RFLAGS, RAX, RCX, RDX, RBX, RSI, RDI, RSP, RBP, R8, R9, R10, R11, R12, R13, R14, R15,
    CS, SS, DS, ES, FS, GS,
    IDT_BASE, IDT_LIMIT, GDT_BASE, GDT_LIMIT,
    LDTR, LDT_BASE, LDT_LIMIT, LDT_AR,
    TR, TSS_BASE, TSS_LIMIT, TSS_AR,
    CR0, CR1, CR2, CR3, CR4,
    DR0, DR1, DR2, DR3, DR4, DR5, DR6, DR7,
    TPR, XCR0;

    private static final Register[] BY_ID = values();

    /** Apple's {@code hv_x86_reg_t} value. */
    public int id() {
        return ordinal();
    }

    /** The register with Apple id {@code id}, or null if there is none. */
    public static Register ofId(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }
}
