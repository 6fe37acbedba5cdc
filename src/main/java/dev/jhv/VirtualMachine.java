package dev.jhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import dev.jhv.internal.kvm.KvmCaps;
import dev.jhv.internal.kvm.KvmVcpu;
import dev.jhv.internal.kvm.KvmVm;
import dev.jhv.internal.linux.SyscallException;

/**
 * A virtual machine: a guest-physical address space and the vCPUs that run in it.
 *
 * <p>A JVM may hold several. Closing one stops and destroys its vCPUs (from any thread), unmaps
 * all guest memory and releases every kernel object; closing twice does nothing.
 *
 * <pre>{@code
 * try (VirtualMachine vm = VirtualMachine.create();
 *      GuestMemory ram = GuestMemory.allocate(1 << 20)) {
 *     vm.map(0, ram, Protection.ALL);
 *     try (Vcpu vcpu = vm.createVcpu()) {
 *         ...
 *     }
 * }
 * }</pre>
 */
public final class VirtualMachine implements AutoCloseable {
    /**
     * Choices made when the VM is created.
     *
     * @param msrExits whether guest RDMSR/WRMSR of MSRs that KVM does not know become
     *                 {@link VmExit.MsrAccess} exits (true) or #GP faults in the guest (false)
     */
    public record Options(boolean msrExits) {
        public static final Options DEFAULT = new Options(true);
    }

    private final Options options;
    private final KvmVm vm;
    private final GuestPhysicalMap memory;
    private final int maxVcpus;
    private final int maxVcpuId;
    private final List<Vcpu> vcpus = new ArrayList<>();
    private int nextKvmId;
    private volatile boolean closed;

    private VirtualMachine(KvmVm vm, Options options) {
        this.options = options;
        this.vm = vm;
        int slots = vm.checkExtension(KvmCaps.NR_MEMSLOTS);
        this.memory = new GuestPhysicalMap(vm, slots);
        int max = vm.checkExtension(KvmCaps.MAX_VCPUS);
        this.maxVcpus = max > 0 ? max : vm.checkExtension(KvmCaps.NR_VCPUS);
        int maxId = vm.checkExtension(KvmCaps.MAX_VCPU_ID);
        this.maxVcpuId = maxId > 0 ? maxId : maxVcpus;
        if (options.msrExits() && vm.checkExtension(KvmCaps.X86_USER_SPACE_MSR) != 0) {
            vm.enableCap(KvmCaps.X86_USER_SPACE_MSR, KvmCaps.MSR_EXIT_REASON_UNKNOWN | KvmCaps.MSR_EXIT_REASON_FILTER);
        }
        if (vm.checkExtension(KvmCaps.EXIT_ON_EMULATION_FAILURE) != 0) {
            // Lets an emulation failure report the instruction bytes it failed on.
            vm.enableCap(KvmCaps.EXIT_ON_EMULATION_FAILURE, 1);
        }
    }

    public static VirtualMachine create() {
        return create(Options.DEFAULT);
    }

    /**
     * Creates a VM.
     *
     * @throws HvException {@link HvReturn#NO_DEVICE} or {@link HvReturn#DENIED} when KVM is not
     *                     usable here (see {@link Hypervisor#support()}), {@link HvReturn#NO_RESOURCES}
     *                     when the kernel refuses another VM
     */
    public static VirtualMachine create(Options options) {
        KvmVm vm;
        try {
            vm = Hypervisor.system().createVm();
        } catch (SyscallException e) {
            throw new HvException(HvReturn.NO_RESOURCES, "KVM could not create a VM: " + e.getMessage(), e);
        }
        try {
            return new VirtualMachine(vm, options);
        } catch (RuntimeException e) {
            vm.close();
            throw e;
        }
    }

    // ---------------------------------------------------------------- memory

    /** Maps all of {@code memory} at guest-physical {@code gpa}. */
    public void map(long gpa, GuestMemory memory, Protection protection) {
        checkOpen();
        if (memory.isClosed()) {
            throw HvException.badArgument("guest memory is closed");
        }
        this.memory.map(gpa, memory.segment(), protection, memory);
    }

    /**
     * Maps caller memory at {@code gpa}: a native, page-aligned segment whose size is a multiple of
     * 4096 and which every thread may access (not from a confined arena). The VM keeps the
     * segment's arena from being closed while a vCPU runs; if it is closed in between, the next
     * {@link Vcpu#run()} unmaps it and fails with {@link HvReturn#FAULT}.
     */
    public void map(long gpa, MemorySegment memory, Protection protection) {
        checkOpen();
        this.memory.map(gpa, memory, protection, null);
    }

    /** Unmaps a completely mapped range; mappings it covers in part keep their other pages. */
    public void unmap(long gpa, long size) {
        checkOpen();
        memory.unmap(gpa, size);
    }

    /** Changes the protection of a completely mapped range (see {@link Protection} for what KVM can do). */
    public void protect(long gpa, long size, Protection protection) {
        checkOpen();
        memory.protect(gpa, size, protection);
    }

    /** The protection at {@code gpa}, or null where nothing is mapped. */
    public Protection protectionAt(long gpa) {
        checkOpen();
        GuestPhysicalMap.Region region = memory.find(gpa);
        return region == null ? null : region.protection();
    }

    GuestPhysicalMap memoryMap() {
        return memory;
    }

    // ---------------------------------------------------------------- vCPUs

    /**
     * Creates a vCPU owned by the calling thread, which must be a platform thread (a virtual
     * thread may move between carrier threads, and KVM ties signals to kernel threads).
     */
    public Vcpu createVcpu() {
        checkOpen();
        if (Thread.currentThread().isVirtual()) {
            throw HvException.badArgument("a vCPU needs a platform thread; it cannot belong to a virtual thread");
        }
        synchronized (vcpus) {
            if (liveVcpus() >= maxVcpus) {
                throw new HvException(HvReturn.NO_RESOURCES, "this VM already has " + maxVcpus + " vCPUs, KVM's limit");
            }
            if (nextKvmId >= maxVcpuId) {
                throw new HvException(HvReturn.NO_RESOURCES, "KVM cannot reuse the ids of destroyed vCPUs, and all "
                        + maxVcpuId + " ids of this VM have been used; create a new VM");
            }
            int id = vcpus.indexOf(null);
            if (id < 0) {
                id = vcpus.size();
                vcpus.add(null);
            }
            KvmVcpu kvmVcpu;
            try {
                kvmVcpu = vm.createVcpu(nextKvmId);
            } catch (SyscallException e) {
                throw new HvException(HvReturn.NO_RESOURCES, "KVM could not create a vCPU: " + e.getMessage(), e);
            }
            nextKvmId++;
            Vcpu vcpu;
            try (Arena arena = Arena.ofConfined()) {
                vcpu = new Vcpu(this, kvmVcpu, id, CpuidTable.hostSupported().forApicId(id).toKvm(arena));
            } catch (RuntimeException e) {
                kvmVcpu.close();
                throw e;
            }
            vcpus.set(id, vcpu);
            return vcpu;
        }
    }

    private int liveVcpus() {
        int count = 0;
        for (Vcpu vcpu : vcpus) {
            count += vcpu == null ? 0 : 1;
        }
        return count;
    }

    /** The VM's live vCPUs, in id order. */
    public List<Vcpu> vcpus() {
        synchronized (vcpus) {
            return vcpus.stream().filter(v -> v != null).toList();
        }
    }

    void release(Vcpu vcpu) {
        vcpu.destroy();
        synchronized (vcpus) {
            int index = vcpus.indexOf(vcpu);
            if (index >= 0) {
                vcpus.set(index, null);
            }
        }
    }

    // ---------------------------------------------------------------- MSRs

    /**
     * Lets KVM handle guest RDMSR/WRMSR only for the MSRs in {@code passthrough}: every other MSR
     * access becomes a {@link VmExit.MsrAccess} exit (VT-x exits 31/32 in the VMX view). The filter
     * is VM-wide, as KVM's is. {@code null} removes it. Needs {@link Options#msrExits()}.
     */
    public void setMsrFilter(java.util.Set<Integer> passthrough) {
        checkOpen();
        if (!options.msrExits()) {
            throw new HvException(HvReturn.UNSUPPORTED, "MSR exits were turned off in this VM's options");
        }
        if (vm.checkExtension(KvmCaps.X86_MSR_FILTER) == 0) {
            throw new HvException(HvReturn.UNSUPPORTED, "this KVM has no MSR filter (KVM_CAP_X86_MSR_FILTER)");
        }
        if (passthrough == null) {
            vm.setMsrFilter(KvmCaps.MSR_FILTER_DEFAULT_ALLOW);
            return;
        }
        int[] sorted = passthrough.stream().mapToInt(Integer::intValue).sorted().toArray();
        List<KvmVm.MsrFilterRange> ranges = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < sorted.length; ) {
                int base = sorted[i];
                int j = i;
                while (j < sorted.length && Integer.toUnsignedLong(sorted[j]) - Integer.toUnsignedLong(base) < MSR_RANGE) {
                    j++;
                }
                int count = sorted[j - 1] - base + 1;
                MemorySegment bitmap = arena.allocate((count + 7) / 8);
                for (int k = i; k < j; k++) {
                    int bit = sorted[k] - base;
                    bitmap.set(java.lang.foreign.ValueLayout.JAVA_BYTE, bit / 8,
                            (byte) (bitmap.get(java.lang.foreign.ValueLayout.JAVA_BYTE, bit / 8) | 1 << (bit % 8)));
                }
                ranges.add(new KvmVm.MsrFilterRange(KvmCaps.MSR_FILTER_READ | KvmCaps.MSR_FILTER_WRITE, base, count,
                        bitmap));
                i = j;
            }
            if (ranges.isEmpty()) {
                // KVM refuses a deny-by-default filter without ranges: give it one that allows nothing.
                ranges.add(new KvmVm.MsrFilterRange(KvmCaps.MSR_FILTER_READ | KvmCaps.MSR_FILTER_WRITE, 0, 8,
                        arena.allocate(1)));
            }
            if (ranges.size() > dev.jhv.internal.kvm.KvmStructs.KVM_MSR_FILTER_MAX_RANGES) {
                throw HvException.badArgument("the MSRs to pass through span more than "
                        + dev.jhv.internal.kvm.KvmStructs.KVM_MSR_FILTER_MAX_RANGES + " ranges of " + MSR_RANGE);
            }
            vm.setMsrFilter(KvmCaps.MSR_FILTER_DEFAULT_DENY, ranges.toArray(KvmVm.MsrFilterRange[]::new));
        }
    }

    /** MSRs closer together than this share one range (and one bitmap) of the filter. */
    private static final int MSR_RANGE = 0x400;

    // ---------------------------------------------------------------- TSC

    /**
     * Sets the guest TSC of every vCPU to {@code tsc}, as one instant: each vCPU gets {@code tsc}
     * plus the ticks elapsed since the call began, so all stay in step. Running vCPUs are briefly
     * interrupted (their {@code run()} returns {@link VmExit.Interrupted}).
     *
     * @throws HvException {@link HvReturn#UNSUPPORTED} on hosts that cannot offset the guest TSC
     *                     (KVM's PVM backend: there every guest reads the host's TSC, so all vCPUs
     *                     are always in step, but the value cannot be chosen)
     */
    public void syncTsc(long tsc) {
        checkOpen();
        List<Vcpu> targets = vcpus();
        if (targets.isEmpty()) {
            throw HvException.badArgument("the VM has no vCPU whose TSC could be set");
        }
        long start = System.nanoTime();
        long ticksPerMilli = targets.getFirst().tscKhz();
        for (Vcpu vcpu : targets) {
            long elapsedTicks = (System.nanoTime() - start) * ticksPerMilli / 1_000_000;
            long wanted = tsc + elapsedTicks;
            long seen = vcpu.writeTscFromAnyThread(wanted);
            // A second of ticks is far more than the write takes; a host that ignores the write
            // shows its own counter, which is far off any value a client would choose.
            if (Math.abs(seen - wanted) > ticksPerMilli * 1000) {
                throw new HvException(HvReturn.UNSUPPORTED, "this host cannot set the guest TSC (backend "
                        + Hypervisor.backend().description() + "): every vCPU reads the host's TSC, so they are"
                        + " always in step, but not at a chosen value");
            }
        }
    }

    // ---------------------------------------------------------------- life cycle

    public boolean isClosed() {
        return closed;
    }

    /** Stops and destroys every vCPU, unmaps all memory and frees the VM. Any thread; idempotent. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        for (Vcpu vcpu : vcpus()) {
            release(vcpu);
        }
        try {
            vm.close();
        } finally {
            memory.releaseAfterVmClosed();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw HvException.badArgument("the VM is closed");
        }
    }
}
