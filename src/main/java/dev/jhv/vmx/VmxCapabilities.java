package dev.jhv.vmx;

import static dev.jhv.vmx.VmxControls.*;

/**
 * The VMX capability values jhv reports ({@code hv_vmx_read_capability}). They describe what jhv
 * honours on KVM, not the host processor: KVM exposes no VMX controls, so jhv emulates them.
 *
 * <p>For the five control capabilities the low 32 bits are the controls that must be 1 (Apple's
 * "must be 1" rules) and the high 32 bits the controls that may be 1: the must-be-1 ones plus
 * those jhv implements. A control that KVM cannot produce an exit for (CR3/CR8 loads, RDTSC,
 * MWAIT, PAUSE, MOV DR, descriptor-table instructions, the TPR shadow, the preemption timer…) is
 * not allowed, so a client's {@code (wanted | low) & high} drops it instead of waiting for exits
 * that would never come. CPUID, XSETBV and control-register accesses exit unconditionally on
 * VT-x; on KVM they are handled in the kernel and never reach the client.
 */
public final class VmxCapabilities {
    private VmxCapabilities() {}

    public static final long PIN_MUST = PIN_BASED_INTR | PIN_BASED_NMI | PIN_BASED_VIRTUAL_NMI;
    public static final long PIN_MAY = PIN_MUST;

    public static final long PROC_MUST = CPU_BASED_TSC_OFFSET | CPU_BASED_UNCOND_IO | CPU_BASED_MSR_BITMAPS
            | CPU_BASED_SECONDARY_CTLS;
    public static final long PROC_MAY = PROC_MUST | CPU_BASED_IRQ_WND | CPU_BASED_HLT;

    public static final long PROC2_MUST = CPU_BASED2_EPT | CPU_BASED2_VPID | CPU_BASED2_UNRESTRICTED;
    /** Besides the must-be-1 bits: APIC-access exits, and instructions the guest may simply use. */
    public static final long PROC2_MAY = PROC2_MUST | CPU_BASED2_VIRTUAL_APIC | CPU_BASED2_RDTSCP
            | CPU_BASED2_INVPCID | CPU_BASED2_XSAVES_XRSTORS;

    public static final long ENTRY_MUST = VMENTRY_LOAD_EFER;
    public static final long ENTRY_MAY = ENTRY_MUST | VMENTRY_GUEST_IA32E | VMENTRY_LOAD_IA32_PAT
            | VMENTRY_LOAD_DBG_CONTROLS;

    public static final long EXIT_MUST = VMEXIT_HOST_IA32E | VMEXIT_LOAD_IA32_PAT | VMEXIT_LOAD_EFER;
    /** Besides the must-be-1 bits: controls about host state, which the framework owns anyway. */
    public static final long EXIT_MAY = EXIT_MUST | VMEXIT_SAVE_DBG_CONTROLS | VMEXIT_SAVE_EFER
            | VMEXIT_LOAD_IA32_PERF_GLOBAL_CTRL | VMEXIT_CLEAR_IA32_BNDCFGS | VMEXIT_CLEAR_IA32_RTIT_CTL
            | VMEXIT_LOAD_CET_STATE;

    /** CR0 bits a guest CR0 may have: all but CD and NW (Apple's rule). None has to be set. */
    public static final long CR0_FIXED0 = 0;
    public static final long CR0_FIXED1 = 0xffffffffL & ~(1L << 30 | 1L << 29);
    /** CR4 bits a guest CR4 may have (VMXE included: clients set it; it is kept out of the real CR4). */
    public static final long CR4_FIXED0 = 0;
    public static final long CR4_FIXED1 = 0x3ff7ffL;

    /** IA32_VMX_BASIC: revision "JHV", 4 KiB VMCS, write-back, INS/OUTS information, TRUE controls. */
    public static final long BASIC = 0x4a4856L | 4096L << 32 | 6L << 50 | 1L << 54 | VMX_BASIC_TRUE_CTLS;
    /** IA32_VMX_MISC: EFER.LMA stored on exit (bit 5), HLT activity state supported (bit 6). */
    public static final long MISC = 1L << 5 | 1L << 6;
    /** IA32_VMX_VMCS_ENUM: the highest field index (bits 9:1) of the encodings Apple names. */
    public static final long VMCS_ENUM = 0x17 << 1;
    /** IA32_VMX_EPT_VPID_CAP: 4-level walks and write-back memory; no execute-only pages, no A/D bits. */
    public static final long EPT_VPID_CAP = 1L << 6 | 1L << 14;
    /** Deadlines of {@code run_until} are kept with the host's monotonic clock, in ns. */
    public static final long PREEMPTION_TIMER_HZ = 1_000_000_000L;

    /** The value {@code hv_vmx_read_capability} reports for capability {@code id}; -1 if there is none. */
    public static long read(int id) {
        return switch (id) {
            case 0, 6 -> control(PIN_MUST, PIN_MAY);
            case 1, 7 -> control(PROC_MUST, PROC_MAY);
            case 2 -> control(PROC2_MUST, PROC2_MAY);
            case 3, 8 -> control(ENTRY_MUST, ENTRY_MAY);
            case 4, 9 -> control(EXIT_MUST, EXIT_MAY);
            case 5 -> BASIC;
            case 10 -> MISC;
            case 11 -> CR0_FIXED0;
            case 12 -> CR0_FIXED1;
            case 13 -> CR4_FIXED0;
            case 14 -> CR4_FIXED1;
            case 15 -> VMCS_ENUM;
            case 16 -> EPT_VPID_CAP;
            case 32 -> PREEMPTION_TIMER_HZ;
            default -> -1;
        };
    }

    /**
     * {allowed_0, allowed_1} for a field whose bits are constrained (controls, guest CR0/CR4, the
     * CR0 mask, the activity state), in {@code hv_vmx_vcpu_get_cap_write_vmcs} form; null for
     * other fields, whose every value fits.
     */
    public static long[] writeMasks(int field) {
        return switch (field) {
            case VmcsFields.VMCS_CTRL_PIN_BASED -> new long[] {PIN_MUST, PIN_MAY};
            case VmcsFields.VMCS_CTRL_CPU_BASED -> new long[] {PROC_MUST, PROC_MAY};
            case VmcsFields.VMCS_CTRL_CPU_BASED2 -> new long[] {PROC2_MUST, PROC2_MAY};
            case VmcsFields.VMCS_CTRL_VMENTRY_CONTROLS -> new long[] {ENTRY_MUST, ENTRY_MAY};
            case VmcsFields.VMCS_CTRL_VMEXIT_CONTROLS -> new long[] {EXIT_MUST, EXIT_MAY};
            case VmcsFields.VMCS_GUEST_CR0 -> new long[] {CR0_FIXED0, CR0_FIXED1};
            case VmcsFields.VMCS_GUEST_CR4 -> new long[] {CR4_FIXED0, CR4_FIXED1};
            case VmcsFields.VMCS_CTRL_CR0_MASK -> new long[] {CR0_MASK_MUST, 0xffffffffL};
            case VmcsFields.VMCS_GUEST_ACTIVITY_STATE -> new long[] {0, 1};
            default -> null;
        };
    }

    /** Apple: the CR0 guest/host mask must contain CD and NW. */
    public static final long CR0_MASK_MUST = 1L << 30 | 1L << 29;

    /** A control capability value: must-be-1 bits low, may-be-1 bits high. */
    public static long control(long must, long may) {
        return may << 32 | must;
    }

    /** {@code (wanted | must) & may}: the client idiom that turns wishes into a valid control value. */
    public static long canonicalise(long capability, long wanted) {
        return (wanted | (capability & 0xffffffffL)) & (capability >>> 32);
    }
}
