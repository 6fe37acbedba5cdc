package dev.jhv.internal.kvm;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;

import dev.jhv.internal.linux.Libc;
import dev.jhv.internal.linux.SyscallException;

import static dev.jhv.internal.kvm.KvmStructs.*;

/**
 * The KVM ioctls jhv issues, numbered as {@code <linux/kvm.h>} numbers them: the argument size
 * encoded in each number comes from the structure's declared layout.
 */
public enum KvmIoctl {
    KVM_GET_API_VERSION(none(0x00)),
    KVM_CREATE_VM(none(0x01)),
    KVM_GET_MSR_INDEX_LIST(readWrite(0x02, KVM_MSR_LIST)),
    KVM_CHECK_EXTENSION(none(0x03)),
    KVM_GET_VCPU_MMAP_SIZE(none(0x04)),
    KVM_GET_SUPPORTED_CPUID(readWrite(0x05, KVM_CPUID2)),
    KVM_GET_MSR_FEATURE_INDEX_LIST(readWrite(0x0a, KVM_MSR_LIST)),
    KVM_CREATE_VCPU(none(0x41)),
    KVM_GET_DIRTY_LOG(write(0x42, KVM_DIRTY_LOG)),
    KVM_SET_USER_MEMORY_REGION(write(0x46, KVM_USERSPACE_MEMORY_REGION)),
    KVM_RUN(none(0x80)),
    KVM_GET_REGS(read(0x81, KVM_REGS)),
    KVM_SET_REGS(write(0x82, KVM_REGS)),
    KVM_GET_SREGS(read(0x83, KVM_SREGS)),
    KVM_SET_SREGS(write(0x84, KVM_SREGS)),
    KVM_TRANSLATE(readWrite(0x85, KVM_TRANSLATION)),
    KVM_INTERRUPT(write(0x86, KvmStructs.KVM_INTERRUPT)),
    KVM_GET_MSRS(readWrite(0x88, KVM_MSRS)),
    KVM_SET_MSRS(write(0x89, KVM_MSRS)),
    KVM_SET_SIGNAL_MASK(write(0x8b, KVM_SIGNAL_MASK)),
    KVM_SET_CPUID2(write(0x90, KVM_CPUID2)),
    KVM_GET_CPUID2(readWrite(0x91, KVM_CPUID2)),
    KVM_NMI(none(0x9a)),
    KVM_SET_GUEST_DEBUG(write(0x9b, KVM_GUEST_DEBUG)),
    KVM_GET_VCPU_EVENTS(read(0x9f, KVM_VCPU_EVENTS)),
    KVM_SET_VCPU_EVENTS(write(0xa0, KVM_VCPU_EVENTS)),
    KVM_GET_DEBUGREGS(read(0xa1, KVM_DEBUGREGS)),
    KVM_SET_DEBUGREGS(write(0xa2, KVM_DEBUGREGS)),
    KVM_ENABLE_CAP(write(0xa3, KvmStructs.KVM_ENABLE_CAP)),
    KVM_GET_XSAVE(read(0xa4, KVM_XSAVE)),
    KVM_SET_XSAVE(write(0xa5, KVM_XSAVE)),
    KVM_GET_XCRS(read(0xa6, KVM_XCRS)),
    KVM_SET_XCRS(write(0xa7, KVM_XCRS)),
    KVM_GET_TSC_KHZ(none(0xa3)),
    KVM_X86_SET_MSR_FILTER(write(0xc6, KVM_MSR_FILTER)),
    KVM_GET_XSAVE2(read(0xcf, KVM_XSAVE));

    private static final long KVMIO = 0xAE;
    private static final long DIRECTION_WRITE = 1;
    private static final long DIRECTION_READ = 2;

    /** The request number passed to ioctl(2). */
    public final long number;

    KvmIoctl(long number) {
        this.number = number;
    }

    private static long encode(long direction, long nr, long size) {
        return direction << 30 | size << 16 | KVMIO << 8 | nr;
    }

    private static long none(long nr) {
        return encode(0, nr, 0);
    }

    private static long read(long nr, MemoryLayout argument) {
        return encode(DIRECTION_READ, nr, argument.byteSize());
    }

    private static long write(long nr, MemoryLayout argument) {
        return encode(DIRECTION_WRITE, nr, argument.byteSize());
    }

    private static long readWrite(long nr, MemoryLayout argument) {
        return encode(DIRECTION_READ | DIRECTION_WRITE, nr, argument.byteSize());
    }

    /** Issues this ioctl with a structure argument; throws, naming the ioctl, on failure. */
    public int call(int fd, MemorySegment argument) {
        return check(Libc.ioctl(fd, number, argument));
    }

    /** Issues this ioctl with an integer argument; throws, naming the ioctl, on failure. */
    public int call(int fd, long argument) {
        return check(Libc.ioctl(fd, number, argument));
    }

    /** Issues this ioctl; returns the result, or {@code -errno} for the caller to interpret. */
    public int callRaw(int fd, MemorySegment argument) {
        return Libc.ioctl(fd, number, argument);
    }

    /** Issues this ioctl with an integer argument; returns the result, or {@code -errno}. */
    public int callRaw(int fd, long argument) {
        return Libc.ioctl(fd, number, argument);
    }

    private int check(int result) {
        if (result < 0) {
            throw new SyscallException(name(), -result);
        }
        return result;
    }
}
