package dev.jhv.internal.kvm;

/** KVM_CHECK_EXTENSION / KVM_ENABLE_CAP numbers and the flag values that go with them. */
public final class KvmCaps {
    private KvmCaps() {}

    public static final int KVM_API_VERSION = 12;

    public static final int USER_MEMORY = 3;
    public static final int NR_VCPUS = 9;
    public static final int NR_MEMSLOTS = 10;
    public static final int VCPU_EVENTS = 41;
    public static final int DEBUGREGS = 50;
    public static final int XSAVE = 55;
    public static final int XCRS = 56;
    public static final int MAX_VCPUS = 66;
    public static final int SYNC_REGS = 74;
    public static final int READONLY_MEM = 81;
    public static final int MAX_VCPU_ID = 128;
    public static final int IMMEDIATE_EXIT = 136;
    public static final int X86_USER_SPACE_MSR = 188;
    public static final int X86_MSR_FILTER = 189;
    public static final int EXIT_ON_EMULATION_FAILURE = 204;

    public static final long SYNC_X86_REGS = 1L << 0;
    public static final long SYNC_X86_SREGS = 1L << 1;
    public static final long SYNC_X86_EVENTS = 1L << 2;

    public static final int MEM_READONLY = 1 << 1;

    public static final int MSR_EXIT_REASON_UNKNOWN = 1 << 1;
    public static final int MSR_EXIT_REASON_FILTER = 1 << 2;
    public static final int MSR_FILTER_DEFAULT_ALLOW = 0;
    public static final int MSR_FILTER_DEFAULT_DENY = 1;
    public static final int MSR_FILTER_READ = 1 << 0;
    public static final int MSR_FILTER_WRITE = 1 << 1;

    public static final int GUESTDBG_ENABLE = 0x1;
    public static final int GUESTDBG_SINGLESTEP = 0x2;
    public static final int GUESTDBG_USE_SW_BP = 0x10000;
    public static final int GUESTDBG_USE_HW_BP = 0x20000;

    public static final int VCPUEVENT_VALID_SHADOW = 0x4;
}
