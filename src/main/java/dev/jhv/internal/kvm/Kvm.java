package dev.jhv.internal.kvm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import dev.jhv.internal.linux.Errno;
import dev.jhv.internal.linux.Libc;
import dev.jhv.internal.linux.SyscallException;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/** An open {@code /dev/kvm}: the system-wide ioctls, and the factory of VMs. */
public final class Kvm implements AutoCloseable {
    public static final String DEVICE = "/dev/kvm";

    private static final long CPUID_ENTRY_BYTES = KvmStructs.KVM_CPUID_ENTRY2.byteSize();
    private static final long CPUID_ENTRIES_OFFSET = KvmStructs.offset(KvmStructs.KVM_CPUID2, "entries");
    private static final long MSR_INDICES_OFFSET = KvmStructs.offset(KvmStructs.KVM_MSR_LIST, "indices");

    private final int fd;
    private boolean closed;

    private Kvm(int fd) {
        this.fd = fd;
    }

    /** Opens the device; throws {@link SyscallException} with the errno (ENOENT, EACCES…) on failure. */
    public static Kvm open() {
        return new Kvm(Libc.open(DEVICE, Libc.O_RDWR | Libc.O_CLOEXEC));
    }

    public int apiVersion() {
        return KvmIoctl.KVM_GET_API_VERSION.call(fd, 0);
    }

    /** KVM_CHECK_EXTENSION: 0 when the capability is absent, else its value (often 1). */
    public int checkExtension(int capability) {
        return KvmIoctl.KVM_CHECK_EXTENSION.call(fd, capability);
    }

    public int vcpuMmapSize() {
        return KvmIoctl.KVM_GET_VCPU_MMAP_SIZE.call(fd, 0);
    }

    /** KVM_CREATE_VM with the default machine type. */
    public KvmVm createVm() {
        int vmFd = KvmIoctl.KVM_CREATE_VM.call(fd, 0);
        return new KvmVm(vmFd, vcpuMmapSize());
    }

    /**
     * KVM_GET_SUPPORTED_CPUID: a {@code kvm_cpuid2} allocated in {@code arena}, its {@code nent}
     * set to the number of entries KVM filled in.
     */
    public MemorySegment supportedCpuid(Arena arena) {
        for (int capacity = 64; ; capacity *= 2) {
            MemorySegment table = arena.allocate(CPUID_ENTRIES_OFFSET + capacity * CPUID_ENTRY_BYTES, 8);
            table.set(JAVA_INT, 0, capacity);
            int result = KvmIoctl.KVM_GET_SUPPORTED_CPUID.callRaw(fd, table);
            if (result >= 0) {
                return table;
            }
            if (result != -Errno.E2BIG || capacity >= 4096) {
                throw new SyscallException(KvmIoctl.KVM_GET_SUPPORTED_CPUID.name(), -result);
            }
        }
    }

    /** KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a vCPU. */
    public int[] msrIndexList() {
        try (Arena arena = Arena.ofConfined()) {
            for (int capacity = 64; ; capacity *= 2) {
                MemorySegment list = arena.allocate(MSR_INDICES_OFFSET + capacity * 4L, 4);
                list.set(JAVA_INT, 0, capacity);
                int result = KvmIoctl.KVM_GET_MSR_INDEX_LIST.callRaw(fd, list);
                if (result >= 0) {
                    int count = list.get(JAVA_INT, 0);
                    return list.asSlice(MSR_INDICES_OFFSET, count * 4L).toArray(JAVA_INT);
                }
                if (result != -Errno.E2BIG || capacity >= 65536) {
                    throw new SyscallException(KvmIoctl.KVM_GET_MSR_INDEX_LIST.name(), -result);
                }
            }
        }
    }

    /** KVM_GET_MSRS on the system: the value of a feature MSR KVM offers guests, or 0 if it has none. */
    public long featureMsr(int index) {
        try (Arena arena = Arena.ofConfined()) {
            long entries = KvmStructs.offset(KvmStructs.KVM_MSRS, "entries");
            MemorySegment msrs = arena.allocate(entries + KvmStructs.KVM_MSR_ENTRY.byteSize(), 8);
            msrs.set(JAVA_INT, 0, 1);
            msrs.set(JAVA_INT, entries + KvmStructs.offset(KvmStructs.KVM_MSR_ENTRY, "index"), index);
            int read = KvmIoctl.KVM_GET_MSRS.call(fd, msrs);
            return read == 1 ? msrs.get(java.lang.foreign.ValueLayout.JAVA_LONG,
                    entries + KvmStructs.offset(KvmStructs.KVM_MSR_ENTRY, "data")) : 0;
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
