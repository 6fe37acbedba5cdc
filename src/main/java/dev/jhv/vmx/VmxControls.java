package dev.jhv.vmx;

/**
 * VMX control bits (pin-based, primary and secondary processor-based, VM-exit, VM-entry),
 * interruption-information and interruptibility bits, and capability bits, with Apple's names.
 * They are {@code long}, as the VMCS values they combine with are: bit 31 must not sign-extend.
 */
public interface VmxControls {
    long PIN_BASED_INTR = 1L << 0;
    long PIN_BASED_NMI = 1L << 3;
    long PIN_BASED_VIRTUAL_NMI = 1L << 5;
    long PIN_BASED_PREEMPTION_TIMER = 1L << 6;
    long PIN_BASED_POSTED_INTR = 1L << 7;

    long CPU_BASED_IRQ_WND = 1L << 2;
    long CPU_BASED_TSC_OFFSET = 1L << 3;
    long CPU_BASED_HLT = 1L << 7;
    long CPU_BASED_INVLPG = 1L << 9;
    long CPU_BASED_MWAIT = 1L << 10;
    long CPU_BASED_RDPMC = 1L << 11;
    long CPU_BASED_RDTSC = 1L << 12;
    long CPU_BASED_CR3_LOAD = 1L << 15;
    long CPU_BASED_CR3_STORE = 1L << 16;
    long CPU_BASED_CR8_LOAD = 1L << 19;
    long CPU_BASED_CR8_STORE = 1L << 20;
    long CPU_BASED_TPR_SHADOW = 1L << 21;
    long CPU_BASED_VIRTUAL_NMI_WND = 1L << 22;
    long CPU_BASED_MOV_DR = 1L << 23;
    long CPU_BASED_UNCOND_IO = 1L << 24;
    long CPU_BASED_IO_BITMAPS = 1L << 25;
    long CPU_BASED_MTF = 1L << 27;
    long CPU_BASED_MSR_BITMAPS = 1L << 28;
    long CPU_BASED_MONITOR = 1L << 29;
    long CPU_BASED_PAUSE = 1L << 30;
    long CPU_BASED_SECONDARY_CTLS = 1L << 31;

    long CPU_BASED2_VIRTUAL_APIC = 1L << 0;
    long CPU_BASED2_EPT = 1L << 1;
    long CPU_BASED2_DESC_TABLE = 1L << 2;
    /** The 10.10 SDK name of {@link #CPU_BASED2_DESC_TABLE}. */
    long CPU_BASED2_DESCR_TABLE_EXIT = CPU_BASED2_DESC_TABLE;
    long CPU_BASED2_RDTSCP = 1L << 3;
    long CPU_BASED2_X2APIC = 1L << 4;
    long CPU_BASED2_VPID = 1L << 5;
    long CPU_BASED2_WBINVD = 1L << 6;
    long CPU_BASED2_UNRESTRICTED = 1L << 7;
    long CPU_BASED2_APIC_REG_VIRT = 1L << 8;
    long CPU_BASED2_VIRT_INTR_DELIVERY = 1L << 9;
    long CPU_BASED2_PAUSE_LOOP = 1L << 10;
    long CPU_BASED2_RDRAND = 1L << 11;
    long CPU_BASED2_INVPCID = 1L << 12;
    long CPU_BASED2_VMFUNC = 1L << 13;
    long CPU_BASED2_VMCS_SHADOW = 1L << 14;
    long CPU_BASED2_ENCLS_EXIT_MAP = 1L << 15;
    long CPU_BASED2_RDSEED = 1L << 16;
    long CPU_BASED2_PML = 1L << 17;
    long CPU_BASED2_EPT_VE = 1L << 18;
    long CPU_BASED2_PT_CONCEAL_VMX = 1L << 19;
    long CPU_BASED2_XSAVES_XRSTORS = 1L << 20;
    long CPU_BASED2_EPT_MODE_BASED_EXEC = 1L << 22;
    long CPU_BASED2_EPT_SUBPAGE_WRITE = 1L << 23;
    long CPU_BASED2_PT_GUEST_PHYSICAL = 1L << 24;
    long CPU_BASED2_TSC_SCALING = 1L << 25;
    long CPU_BASED2_USER_WAIT_PAUSE = 1L << 26;
    long CPU_BASED2_ENCLV_EXIT_MAP = 1L << 28;

    long VMEXIT_SAVE_DBG_CONTROLS = 1L << 2;
    long VMEXIT_HOST_IA32E = 1L << 9;
    long VMEXIT_LOAD_IA32_PERF_GLOBAL_CTRL = 1L << 12;
    long VMEXIT_ACK_INTR = 1L << 15;
    long VMEXIT_SAVE_IA32_PAT = 1L << 18;
    long VMEXIT_LOAD_IA32_PAT = 1L << 19;
    long VMEXIT_SAVE_EFER = 1L << 20;
    long VMEXIT_LOAD_EFER = 1L << 21;
    long VMEXIT_SAVE_VMX_TIMER = 1L << 22;
    long VMEXIT_CLEAR_IA32_BNDCFGS = 1L << 23;
    long VMEXIT_PT_CONCEAL_VMX = 1L << 24;
    long VMEXIT_CLEAR_IA32_RTIT_CTL = 1L << 25;
    long VMEXIT_LOAD_CET_STATE = 1L << 28;

    long VMENTRY_LOAD_DBG_CONTROLS = 1L << 2;
    long VMENTRY_GUEST_IA32E = 1L << 9;
    long VMENTRY_SMM = 1L << 10;
    long VMENTRY_DEACTIVATE_DUAL_MONITOR = 1L << 11;
    long VMENTRY_LOAD_IA32_PERF_GLOBAL_CTRL = 1L << 13;
    long VMENTRY_LOAD_IA32_PAT = 1L << 14;
    long VMENTRY_LOAD_EFER = 1L << 15;
    long VMENTRY_LOAD_IA32_BNDCFGS = 1L << 16;
    long VMENTRY_PT_CONCEAL_VMX = 1L << 17;
    long VMENTRY_LOAD_IA32_RTIT_CTL = 1L << 18;
    long VMENTRY_LOAD_CET_STATE = 1L << 20;

    long IRQ_INFO_EXT_IRQ = 0L << 8;
    long IRQ_INFO_NMI = 2L << 8;
    long IRQ_INFO_HARD_EXC = 3L << 8;
    long IRQ_INFO_SOFT_IRQ = 4L << 8;
    long IRQ_INFO_PRIV_SOFT_EXC = 5L << 8;
    long IRQ_INFO_SOFT_EXC = 6L << 8;
    long IRQ_INFO_TYPE_MASK = 7L << 8;
    long IRQ_INFO_ERROR_VALID = 1L << 11;
    long IRQ_INFO_VALID = 1L << 31;

    long GUEST_INTRBILITY_STI_BLOCKING = 1L << 0;
    long GUEST_INTRBILITY_MOVSS_BLOCKING = 1L << 1;
    long GUEST_INTRBILITY_SMI_BLOCKING = 1L << 2;
    long GUEST_INTRBILITY_NMI_BLOCKING = 1L << 3;

    long VMX_BASIC_TRUE_CTLS = 1L << 55;
    long VMX_EPT_VPID_SUPPORT_EXONLY = 1L << 0;
    long VMX_EPT_VPID_SUPPORT_AD = 1L << 21;
}
