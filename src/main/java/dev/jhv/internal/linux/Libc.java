package dev.jhv.internal.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The C library calls jhv makes, bound once as FFM downcall handles.
 *
 * <p>Every call that can fail captures errno through the linker's call-state mechanism, into a
 * per-thread buffer, so a failing call costs no allocation. Calls on hot paths ({@link #ioctl})
 * report failure as a negative errno instead of throwing, so callers can treat EINTR as an event.
 */
public final class Libc {
    public static final long PAGE_SIZE = 4096;

    public static final int O_RDWR = 0x2;
    public static final int O_CLOEXEC = 0x80000;

    public static final int PROT_READ = 0x1;
    public static final int PROT_WRITE = 0x2;
    public static final int MAP_SHARED = 0x01;
    public static final int MAP_PRIVATE = 0x02;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_NORESERVE = 0x4000;
    public static final int MADV_HUGEPAGE = 14;
    public static final int MFD_CLOEXEC = 0x1;

    public static final int SIG_BLOCK = 0;
    public static final int SA_RESTART = 0x10000000;
    /** glibc's sigset_t; the kernel itself only looks at the first 8 bytes. */
    public static final long SIGSET_BYTES = 128;
    /** The kernel's sigset, as KVM_SET_SIGNAL_MASK wants it. */
    public static final int KERNEL_SIGSET_BYTES = 8;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup C = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    /*
     * One errno buffer per thread, followed by the thread's count of ioctls (a diagnostic the
     * benchmarks read: KVM's per-call cost makes the number of ioctls per exit matter). An
     * automatic arena frees it once the thread (and with it the thread-local) is gone, so threads
     * that come and go leave nothing behind.
     */
    private static final long IOCTL_COUNT = CALL_STATE.byteSize() + 7 & ~7L;
    private static final ThreadLocal<MemorySegment> ERRNO_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(IOCTL_COUNT + 8, 8));

    /** How many ioctls the calling thread has made. */
    public static long ioctlsOfThisThread() {
        return ERRNO_BUFFER.get().get(JAVA_LONG, IOCTL_COUNT);
    }

    private static void countIoctl(MemorySegment buffer) {
        buffer.set(JAVA_LONG, IOCTL_COUNT, buffer.get(JAVA_LONG, IOCTL_COUNT) + 1);
    }

    private static final MethodHandle OPEN = errnoHandle("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle IOCTL_POINTER = errnoHandle("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_VALUE = errnoHandle("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), Linker.Option.firstVariadicArg(2));
    /** How many segments {@link #ioctlKeepingAlive} can keep alive in one call. */
    public static final int MAX_KEEP_ALIVE = 4;
    private static final MethodHandle[] IOCTL_KEEPING_ALIVE = new MethodHandle[MAX_KEEP_ALIVE + 1];

    static {
        for (int count = 0; count <= MAX_KEEP_ALIVE; count++) {
            MemoryLayout[] arguments = new MemoryLayout[3 + count];
            arguments[0] = JAVA_INT;
            arguments[1] = JAVA_LONG;
            arguments[2] = JAVA_LONG;
            java.util.Arrays.fill(arguments, 3, arguments.length, ADDRESS);
            IOCTL_KEEPING_ALIVE[count] = errnoHandle("ioctl",
                    FunctionDescriptor.of(JAVA_INT, arguments), Linker.Option.firstVariadicArg(2));
        }
    }

    private static final MethodHandle MMAP = errnoHandle("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = errnoHandle("munmap",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle MADVISE = errnoHandle("madvise",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = errnoHandle("memfd_create",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = errnoHandle("ftruncate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle GETTID = handle("gettid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETPID = handle("getpid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle TGKILL = errnoHandle("tgkill",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle PTHREAD_SIGMASK = handle("pthread_sigmask",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SIGTIMEDWAIT = errnoHandle("sigtimedwait",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    private static final MethodHandle SIGACTION = errnoHandle("sigaction",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SIGRTMIN = handle("__libc_current_sigrtmin", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle STRERROR = handle("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));

    private Libc() {}

    private static MethodHandle handle(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = C.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("C library has no symbol " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    private static MethodHandle errnoHandle(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        Linker.Option[] all = new Linker.Option[options.length + 1];
        all[0] = CAPTURE_ERRNO;
        System.arraycopy(options, 0, all, 1, options.length);
        // Captured errno arrives as a leading segment parameter.
        return handle(name, descriptor, all);
    }

    private static int lastErrno(MemorySegment buffer) {
        return (int) ERRNO.get(buffer, 0L);
    }

    private static SyscallException failure(String call, MemorySegment buffer) {
        return new SyscallException(call, lastErrno(buffer));
    }

    /** Wraps checked exceptions of {@code invokeExact}; the handles above throw none in practice. */
    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    public static final int O_CREAT = 0x40;

    /** open(2). Returns the descriptor. */
    public static int open(String path, int flags) {
        return open(path, flags, 0);
    }

    /** open(2) with the mode for a file it creates. Returns the descriptor. */
    public static int open(String path, int flags, int mode) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) OPEN.invokeExact(buffer, arena.allocateFrom(path), flags, mode);
            if (fd < 0) {
                throw new SyscallException("open " + path, lastErrno(buffer));
            }
            return fd;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** close(2); failures are reported, since a close that fails still releases the descriptor. */
    public static void close(int fd) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        int result;
        try {
            result = (int) CLOSE.invokeExact(buffer, fd);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (result < 0) {
            throw failure("close", buffer);
        }
    }

    /** ioctl(2) with a pointer argument. Returns the result, or {@code -errno} on failure. */
    public static int ioctl(int fd, long request, MemorySegment argument) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        countIoctl(buffer);
        int result;
        try {
            result = (int) IOCTL_POINTER.invokeExact(buffer, fd, request, argument);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        return result < 0 ? -lastErrno(buffer) : result;
    }

    /** ioctl(2) with an integer argument. Returns the result, or {@code -errno} on failure. */
    public static int ioctl(int fd, long request, long argument) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        countIoctl(buffer);
        int result;
        try {
            result = (int) IOCTL_VALUE.invokeExact(buffer, fd, request, argument);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        return result < 0 ? -lastErrno(buffer) : result;
    }

    /**
     * ioctl(2) with a zero argument, passing the first {@code count} segments of {@code keepAlive}
     * as extra variadic arguments that the kernel never reads. The FFM runtime keeps the scope of
     * every segment argument alive until the call returns, and a shared arena cannot be closed
     * while one of its segments is in a running call. Returns the result, or {@code -errno}.
     */
    public static int ioctlKeepingAlive(int fd, long request, MemorySegment[] keepAlive, int count) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        countIoctl(buffer);
        MethodHandle handle = IOCTL_KEEPING_ALIVE[count];
        int result;
        try {
            result = switch (count) {
                case 0 -> (int) handle.invokeExact(buffer, fd, request, 0L);
                case 1 -> (int) handle.invokeExact(buffer, fd, request, 0L, keepAlive[0]);
                case 2 -> (int) handle.invokeExact(buffer, fd, request, 0L, keepAlive[0], keepAlive[1]);
                case 3 -> (int) handle.invokeExact(buffer, fd, request, 0L, keepAlive[0], keepAlive[1], keepAlive[2]);
                case 4 -> (int) handle.invokeExact(buffer, fd, request, 0L, keepAlive[0], keepAlive[1], keepAlive[2],
                        keepAlive[3]);
                default -> throw new IllegalArgumentException("at most " + MAX_KEEP_ALIVE + " segments");
            };
        } catch (Throwable t) {
            throw unexpected(t);
        }
        return result < 0 ? -lastErrno(buffer) : result;
    }

    /**
     * mmap(2) of {@code length} bytes; returns a segment of exactly that size whose lifetime is
     * managed by the caller through {@link #munmap}.
     */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        MemorySegment address;
        try {
            address = (MemorySegment) MMAP.invokeExact(buffer, MemorySegment.NULL, length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (address.address() == -1L) {
            throw failure("mmap", buffer);
        }
        return address.reinterpret(length);
    }

    public static void munmap(MemorySegment mapping) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        int result;
        try {
            result = (int) MUNMAP.invokeExact(buffer, mapping, mapping.byteSize());
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (result < 0) {
            throw failure("munmap", buffer);
        }
    }

    public static void madvise(MemorySegment range, int advice) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        int result;
        try {
            result = (int) MADVISE.invokeExact(buffer, range, range.byteSize(), advice);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (result < 0) {
            throw failure("madvise", buffer);
        }
    }

    public static int memfdCreate(String name, int flags) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) MEMFD_CREATE.invokeExact(buffer, arena.allocateFrom(name), flags);
            if (fd < 0) {
                throw failure("memfd_create", buffer);
            }
            return fd;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static void ftruncate(int fd, long length) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        int result;
        try {
            result = (int) FTRUNCATE.invokeExact(buffer, fd, length);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (result < 0) {
            throw failure("ftruncate", buffer);
        }
    }

    /** The kernel id of the calling thread. */
    public static int gettid() {
        try {
            return (int) GETTID.invokeExact();
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** The address of getpid(): used as a signal handler that does nothing (see {@code Kick}). */
    public static MemorySegment getpidAddress() {
        return C.find("getpid").orElseThrow();
    }

    /** tgkill(2). Returns 0, or {@code -errno} (ESRCH: the thread is gone). */
    public static int tgkill(int pid, int tid, int signal) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        int result;
        try {
            result = (int) TGKILL.invokeExact(buffer, pid, tid, signal);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        return result < 0 ? -lastErrno(buffer) : 0;
    }

    /** pthread_sigmask(3) on the calling thread; {@code set} or {@code old} may be NULL. */
    public static void pthreadSigmask(int how, MemorySegment set, MemorySegment old) {
        int result;
        try {
            result = (int) PTHREAD_SIGMASK.invokeExact(how, set, old);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (result != 0) {
            throw new SyscallException("pthread_sigmask", result);
        }
    }

    /** sigtimedwait(2) with the given timespec; returns the signal number, or {@code -errno}. */
    public static int sigtimedwait(MemorySegment set, MemorySegment timeout) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        int result;
        try {
            result = (int) SIGTIMEDWAIT.invokeExact(buffer, set, MemorySegment.NULL, timeout);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        return result < 0 ? -lastErrno(buffer) : result;
    }

    public static void sigaction(int signal, MemorySegment action, MemorySegment old) {
        MemorySegment buffer = ERRNO_BUFFER.get();
        int result;
        try {
            result = (int) SIGACTION.invokeExact(buffer, signal, action, old);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (result < 0) {
            throw failure("sigaction", buffer);
        }
    }

    /** SIGRTMIN as this C library defines it (glibc reserves the first few real-time signals). */
    public static int sigrtmin() {
        try {
            return (int) SIGRTMIN.invokeExact();
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    static String strerror(int errno) {
        try {
            MemorySegment text = (MemorySegment) STRERROR.invokeExact(errno);
            // strerror returns a NUL-terminated string in static storage; 256 bytes bound the read.
            return text.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }
}
