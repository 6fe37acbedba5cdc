package dev.jhv.internal.kvm;

/** KVM's exit reasons ({@code kvm_run.exit_reason}) and the sub-codes jhv interprets. */
public final class KvmExit {
    private KvmExit() {}

    public static final int UNKNOWN = 0;
    public static final int EXCEPTION = 1;
    public static final int IO = 2;
    public static final int HYPERCALL = 3;
    public static final int DEBUG = 4;
    public static final int HLT = 5;
    public static final int MMIO = 6;
    public static final int IRQ_WINDOW_OPEN = 7;
    public static final int SHUTDOWN = 8;
    public static final int FAIL_ENTRY = 9;
    public static final int INTR = 10;
    public static final int INTERNAL_ERROR = 17;
    public static final int SYSTEM_EVENT = 24;
    public static final int X86_RDMSR = 29;
    public static final int X86_WRMSR = 30;

    public static final int IO_IN = 0;
    public static final int IO_OUT = 1;

    public static final int INTERNAL_ERROR_EMULATION = 1;
    public static final int INTERNAL_ERROR_SIMUL_EX = 2;
    public static final int INTERNAL_ERROR_DELIVERY_EV = 3;
    public static final int INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4;

    /** A short name for diagnostics. */
    public static String name(int reason) {
        return switch (reason) {
            case UNKNOWN -> "UNKNOWN";
            case EXCEPTION -> "EXCEPTION";
            case IO -> "IO";
            case HYPERCALL -> "HYPERCALL";
            case DEBUG -> "DEBUG";
            case HLT -> "HLT";
            case MMIO -> "MMIO";
            case IRQ_WINDOW_OPEN -> "IRQ_WINDOW_OPEN";
            case SHUTDOWN -> "SHUTDOWN";
            case FAIL_ENTRY -> "FAIL_ENTRY";
            case INTR -> "INTR";
            case INTERNAL_ERROR -> "INTERNAL_ERROR";
            case SYSTEM_EVENT -> "SYSTEM_EVENT";
            case X86_RDMSR -> "X86_RDMSR";
            case X86_WRMSR -> "X86_WRMSR";
            default -> "exit " + reason;
        };
    }
}
