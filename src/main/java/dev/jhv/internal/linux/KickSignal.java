package dev.jhv.internal.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The real-time signal that kicks a vCPU thread out of KVM_RUN.
 *
 * <p>The signal stays blocked in every vCPU thread; KVM unblocks it only for the duration of
 * KVM_RUN (KVM_SET_SIGNAL_MASK). A kick that arrives inside the guest makes KVM_RUN return EINTR;
 * a kick that arrives just before entry stays pending and makes the next KVM_RUN return at once;
 * either way the vCPU thread then consumes it with {@link #consumePending}. So no kick is lost
 * and none is delivered as a real signal to the JVM.
 *
 * <p>A handler is installed all the same, so a stray delivery to a thread that does not block the
 * signal can never terminate the process. It has to be a native function that does nothing and is
 * async-signal-safe; {@code getpid} is both (it ignores the signal-number argument it is given).
 */
public final class KickSignal {
    /** SIGRTMIN + 3: clear of glibc's reserved signals and of the JVM's own (it uses none of these). */
    public static final int NUMBER = Libc.sigrtmin() + 3;

    private static final long SIGACTION_BYTES = 152;
    private static final long SA_FLAGS_OFFSET = 8 + Libc.SIGSET_BYTES;
    private static final long TIMESPEC_BYTES = 16;

    private static final int PROCESS = Libc.getpid();
    private static final MemorySegment ONLY_KICK;
    private static final MemorySegment ZERO_TIMEOUT;

    static {
        Arena arena = Arena.global();
        ONLY_KICK = arena.allocate(Libc.SIGSET_BYTES, 8);
        ONLY_KICK.set(JAVA_LONG, 0, bit());
        ZERO_TIMEOUT = arena.allocate(TIMESPEC_BYTES, 8);
        try (Arena local = Arena.ofConfined()) {
            MemorySegment action = local.allocate(SIGACTION_BYTES, 8);
            action.set(JAVA_LONG, 0, Libc.getpidAddress().address());
            action.set(java.lang.foreign.ValueLayout.JAVA_INT, SA_FLAGS_OFFSET, Libc.SA_RESTART);
            Libc.sigaction(NUMBER, action, MemorySegment.NULL);
        }
    }

    private KickSignal() {}

    private static long bit() {
        return 1L << (NUMBER - 1);
    }

    /** Blocks the kick signal in the calling thread, for as long as the thread lives. */
    public static void blockInCurrentThread() {
        Libc.pthreadSigmask(Libc.SIG_BLOCK, ONLY_KICK, MemorySegment.NULL);
    }

    /**
     * The calling thread's signal mask without the kick signal, in the kernel's 8-byte form that
     * KVM_SET_SIGNAL_MASK takes: the mask KVM should apply while the guest runs.
     */
    public static long runMaskOfCurrentThread() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment current = arena.allocate(Libc.SIGSET_BYTES, 8);
            Libc.pthreadSigmask(Libc.SIG_BLOCK, MemorySegment.NULL, current);
            return current.get(JAVA_LONG, 0) & ~bit();
        }
    }

    /** Sends a kick to thread {@code tid} of this process; false if that thread no longer exists. */
    public static boolean send(int tid) {
        int result = Libc.tgkill(PROCESS, tid, NUMBER);
        if (result == -Errno.ESRCH) {
            return false;
        }
        if (result < 0) {
            throw new SyscallException("tgkill", -result);
        }
        return true;
    }

    /** Consumes kicks pending for the calling thread; returns how many were pending (0 or 1). */
    public static int consumePending() {
        int consumed = 0;
        while (Libc.sigtimedwait(ONLY_KICK, ZERO_TIMEOUT) == NUMBER) {
            consumed++;
        }
        return consumed;
    }
}
