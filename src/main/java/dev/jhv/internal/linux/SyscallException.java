package dev.jhv.internal.linux;

/** A failed system call: names the call and the errno, with the kernel's text for it. */
public final class SyscallException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int errno;

    public SyscallException(String call, int errno) {
        super(call + " failed: " + Errno.describe(errno));
        this.call = call;
        this.errno = errno;
    }

    /** The call that failed, e.g. {@code "KVM_SET_USER_MEMORY_REGION"} or {@code "mmap"}. */
    public String call() {
        return call;
    }

    public int errno() {
        return errno;
    }
}
