package dev.jhv.internal.kvm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import dev.jhv.internal.linux.Libc;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A KVM vCPU file descriptor and its mapped {@code kvm_run}: one thin method per vCPU ioctl.
 * Structure arguments are caller-owned segments, so hot paths can reuse theirs.
 */
public final class KvmVcpu implements AutoCloseable {
    private final int fd;
    private final MemorySegment run;
    private boolean closed;

    KvmVcpu(int fd, MemorySegment run) {
        this.fd = fd;
        this.run = run;
    }

    /** The shared {@code kvm_run} page(s); valid until {@link #close}. */
    public MemorySegment runStructure() {
        return run;
    }

    /** KVM_RUN: 0, or {@code -errno} (EINTR when a kick or immediate_exit ended it). */
    public int run() {
        return KvmIoctl.KVM_RUN.callRaw(fd, 0);
    }

    /**
     * KVM_RUN that also keeps the given segments' scopes alive for the duration of the call:
     * the FFM runtime acquires the scope of every segment passed to a downcall, so an arena whose
     * memory the guest is using cannot be closed while the guest runs. KVM ignores the arguments.
     */
    public int run(MemorySegment[] keepAlive, int count) {
        return Libc.ioctlKeepingAlive(fd, KvmIoctl.KVM_RUN.number, keepAlive, count);
    }

    public void getRegs(MemorySegment regs) {
        KvmIoctl.KVM_GET_REGS.call(fd, regs);
    }

    public void setRegs(MemorySegment regs) {
        KvmIoctl.KVM_SET_REGS.call(fd, regs);
    }

    public void getSregs(MemorySegment sregs) {
        KvmIoctl.KVM_GET_SREGS.call(fd, sregs);
    }

    public void setSregs(MemorySegment sregs) {
        KvmIoctl.KVM_SET_SREGS.call(fd, sregs);
    }

    /** Returns 0 or {@code -errno}: KVM refuses inconsistent state with EINVAL, which callers report. */
    public int setSregsRaw(MemorySegment sregs) {
        return KvmIoctl.KVM_SET_SREGS.callRaw(fd, sregs);
    }

    public void getVcpuEvents(MemorySegment events) {
        KvmIoctl.KVM_GET_VCPU_EVENTS.call(fd, events);
    }

    public void setVcpuEvents(MemorySegment events) {
        KvmIoctl.KVM_SET_VCPU_EVENTS.call(fd, events);
    }

    public void getDebugRegs(MemorySegment debugRegs) {
        KvmIoctl.KVM_GET_DEBUGREGS.call(fd, debugRegs);
    }

    public void setDebugRegs(MemorySegment debugRegs) {
        KvmIoctl.KVM_SET_DEBUGREGS.call(fd, debugRegs);
    }

    public void getXsave(MemorySegment xsave) {
        KvmIoctl.KVM_GET_XSAVE.call(fd, xsave);
    }

    public void setXsave(MemorySegment xsave) {
        KvmIoctl.KVM_SET_XSAVE.call(fd, xsave);
    }

    public void getXcrs(MemorySegment xcrs) {
        KvmIoctl.KVM_GET_XCRS.call(fd, xcrs);
    }

    /** Returns 0 or {@code -errno}: KVM refuses XCR0 values the CPUID does not allow. */
    public int setXcrsRaw(MemorySegment xcrs) {
        return KvmIoctl.KVM_SET_XCRS.callRaw(fd, xcrs);
    }

    /** KVM_GET_MSRS: returns how many of the entries KVM could read. */
    public int getMsrs(MemorySegment msrs) {
        return KvmIoctl.KVM_GET_MSRS.call(fd, msrs);
    }

    /** KVM_SET_MSRS: returns how many of the entries KVM accepted. */
    public int setMsrs(MemorySegment msrs) {
        return KvmIoctl.KVM_SET_MSRS.call(fd, msrs);
    }

    /** Returns 0 or {@code -errno}: after the first KVM_RUN, KVM only accepts the table it has. */
    public int setCpuid2Raw(MemorySegment cpuid) {
        return KvmIoctl.KVM_SET_CPUID2.callRaw(fd, cpuid);
    }

    public void getCpuid2(MemorySegment cpuid) {
        KvmIoctl.KVM_GET_CPUID2.call(fd, cpuid);
    }

    public void setGuestDebug(MemorySegment debug) {
        KvmIoctl.KVM_SET_GUEST_DEBUG.call(fd, debug);
    }

    public void translate(MemorySegment translation) {
        KvmIoctl.KVM_TRANSLATE.call(fd, translation);
    }

    /** KVM_INTERRUPT: queues an external interrupt (no in-kernel irqchip). */
    public void interrupt(int vector) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment irq = arena.allocate(KvmStructs.KVM_INTERRUPT);
            irq.set(JAVA_INT, 0, vector);
            KvmIoctl.KVM_INTERRUPT.call(fd, irq);
        }
    }

    public void nmi() {
        KvmIoctl.KVM_NMI.call(fd, 0);
    }

    /** KVM_SET_SIGNAL_MASK: the signal mask in force while this vCPU is inside KVM_RUN. */
    public void setSignalMask(long kernelSigset) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mask = arena.allocate(KvmStructs.KVM_SIGNAL_MASK.byteSize() + Libc.KERNEL_SIGSET_BYTES, 8);
            mask.set(JAVA_INT, 0, Libc.KERNEL_SIGSET_BYTES);
            mask.set(JAVA_LONG.withByteAlignment(4), KvmStructs.offset(KvmStructs.KVM_SIGNAL_MASK, "sigset"), kernelSigset);
            KvmIoctl.KVM_SET_SIGNAL_MASK.call(fd, mask);
        }
    }

    public int getTscKhz() {
        return KvmIoctl.KVM_GET_TSC_KHZ.call(fd, 0);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Libc.munmap(run);
            Libc.close(fd);
        }
    }
}
