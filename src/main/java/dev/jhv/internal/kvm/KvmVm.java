package dev.jhv.internal.kvm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import dev.jhv.internal.linux.Libc;

import static dev.jhv.internal.kvm.KvmStructs.KVM_ENABLE_CAP;
import static dev.jhv.internal.kvm.KvmStructs.KVM_MSR_FILTER;
import static dev.jhv.internal.kvm.KvmStructs.KVM_MSR_FILTER_RANGE;
import static dev.jhv.internal.kvm.KvmStructs.KVM_USERSPACE_MEMORY_REGION;
import static dev.jhv.internal.kvm.KvmStructs.offset;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** A KVM VM file descriptor: one thin method per VM ioctl. */
public final class KvmVm implements AutoCloseable {
    private static final long REGION_SLOT = offset(KVM_USERSPACE_MEMORY_REGION, "slot");
    private static final long REGION_FLAGS = offset(KVM_USERSPACE_MEMORY_REGION, "flags");
    private static final long REGION_GPA = offset(KVM_USERSPACE_MEMORY_REGION, "guest_phys_addr");
    private static final long REGION_SIZE = offset(KVM_USERSPACE_MEMORY_REGION, "memory_size");
    private static final long REGION_HVA = offset(KVM_USERSPACE_MEMORY_REGION, "userspace_addr");
    private static final long CAP_CAP = offset(KVM_ENABLE_CAP, "cap");
    private static final long CAP_ARGS = offset(KVM_ENABLE_CAP, "args");
    private static final long FILTER_FLAGS = offset(KVM_MSR_FILTER, "flags");
    private static final long FILTER_RANGES = offset(KVM_MSR_FILTER, "ranges");
    private static final long RANGE_BYTES = KVM_MSR_FILTER_RANGE.byteSize();
    private static final long RANGE_FLAGS = offset(KVM_MSR_FILTER_RANGE, "flags");
    private static final long RANGE_NMSRS = offset(KVM_MSR_FILTER_RANGE, "nmsrs");
    private static final long RANGE_BASE = offset(KVM_MSR_FILTER_RANGE, "base");
    private static final long RANGE_BITMAP = offset(KVM_MSR_FILTER_RANGE, "bitmap");

    private final int fd;
    private final int vcpuMmapSize;
    private boolean closed;

    KvmVm(int fd, int vcpuMmapSize) {
        this.fd = fd;
        this.vcpuMmapSize = vcpuMmapSize;
    }

    public int checkExtension(int capability) {
        return KvmIoctl.KVM_CHECK_EXTENSION.call(fd, capability);
    }

    /** KVM_ENABLE_CAP with up to four arguments. */
    public void enableCap(int capability, long... args) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cap = arena.allocate(KVM_ENABLE_CAP);
            cap.set(JAVA_INT, CAP_CAP, capability);
            for (int i = 0; i < args.length; i++) {
                cap.set(JAVA_LONG, CAP_ARGS + 8L * i, args[i]);
            }
            KvmIoctl.KVM_ENABLE_CAP.call(fd, cap);
        }
    }

    /**
     * KVM_SET_USER_MEMORY_REGION: creates, moves or (size 0) deletes memory slot {@code slot}.
     * Returns 0 or {@code -errno}, since callers map EEXIST and EINVAL to their own errors.
     */
    public int setUserMemoryRegion(int slot, int flags, long guestPhysical, long size, long hostVirtual) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(KVM_USERSPACE_MEMORY_REGION);
            region.set(JAVA_INT, REGION_SLOT, slot);
            region.set(JAVA_INT, REGION_FLAGS, flags);
            region.set(JAVA_LONG, REGION_GPA, guestPhysical);
            region.set(JAVA_LONG, REGION_SIZE, size);
            region.set(JAVA_LONG, REGION_HVA, hostVirtual);
            return KvmIoctl.KVM_SET_USER_MEMORY_REGION.callRaw(fd, region);
        }
    }

    /** One range of an MSR filter: {@code bitmap} has one bit per MSR from {@code base}, 1 = allowed. */
    public record MsrFilterRange(int flags, int base, int count, MemorySegment bitmap) {}

    /** KVM_X86_SET_MSR_FILTER. */
    public void setMsrFilter(int flags, MsrFilterRange... ranges) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment filter = arena.allocate(KVM_MSR_FILTER);
            filter.set(JAVA_INT, FILTER_FLAGS, flags);
            for (int i = 0; i < ranges.length; i++) {
                long at = FILTER_RANGES + i * RANGE_BYTES;
                filter.set(JAVA_INT, at + RANGE_FLAGS, ranges[i].flags());
                filter.set(JAVA_INT, at + RANGE_NMSRS, ranges[i].count());
                filter.set(JAVA_INT, at + RANGE_BASE, ranges[i].base());
                filter.set(JAVA_LONG, at + RANGE_BITMAP, ranges[i].bitmap().address());
            }
            KvmIoctl.KVM_X86_SET_MSR_FILTER.call(fd, filter);
        }
    }

    /** KVM_GET_TSC_KHZ on the VM: the TSC rate new vCPUs get. */
    public int tscKhz() {
        return KvmIoctl.KVM_GET_TSC_KHZ.call(fd, 0);
    }

    /** KVM_CREATE_VCPU, and the mapping of its {@code kvm_run}. */
    public KvmVcpu createVcpu(int id) {
        int vcpuFd = KvmIoctl.KVM_CREATE_VCPU.call(fd, id);
        try {
            MemorySegment run = Libc.mmap(vcpuMmapSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, vcpuFd, 0);
            return new KvmVcpu(vcpuFd, run);
        } catch (RuntimeException e) {
            Libc.close(vcpuFd);
            throw e;
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Libc.close(fd);
        }
    }
}
