package dev.jhv.hv;

import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.Set;

import dev.jhv.HvException;
import dev.jhv.HvReturn;
import dev.jhv.Hypervisor;
import dev.jhv.Protection;
import dev.jhv.Register;
import dev.jhv.Vcpu;
import dev.jhv.VirtualMachine;
import dev.jhv.vmx.VmcsFields;
import dev.jhv.vmx.VmxCapabilities;
import dev.jhv.vmx.VmxControls;
import dev.jhv.vmx.VmxExitReasons;

/**
 * Apple's Hypervisor framework, Intel flavour, function by function: the same names, the same
 * {@code hv_return_t} codes, the same rules. Code written against the framework ports line by line:
 *
 * <pre>{@code
 * import static dev.jhv.hv.Hv.*;
 *
 * int[] vcpu = new int[1];
 * hv_vm_create(HV_VM_DEFAULT);
 * hv_vm_map(memory, 0, size, HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC);
 * hv_vcpu_create(vcpu, HV_VCPU_DEFAULT);
 * hv_vcpu_run_until(vcpu[0], HV_DEADLINE_FOREVER);
 * long[] reason = new long[1];
 * hv_vmx_vcpu_read_vmcs(vcpu[0], VMCS_RO_EXIT_REASON, reason);
 * }</pre>
 *
 * <p>Types: {@code hv_return_t}, ids, MSR indices, VMCS fields and counts are {@code int};
 * 64-bit values, addresses, sizes, flags and deadlines are {@code long}; {@code uint64_t *}
 * out-parameters are {@code long[]} and id out-parameters {@code int[]}, of which element 0 is
 * written, and only on success; host memory is a {@link MemorySegment}.
 *
 * <p>The framework's rules hold: one VM per process ({@code HV_BUSY} for a second); vCPU ids from
 * 0 in creation order; a vCPU belongs to the thread that created it and every vCPU function but
 * {@link #hv_vcpu_interrupt} fails with {@code HV_BAD_ARGUMENT} on any other thread, changing
 * nothing. Deadlines are in nanoseconds of the monotonic clock {@link System#nanoTime()} uses.
 */
public final class Hv implements HvConstants, VmcsFields, VmxExitReasons, VmxControls {
    private Hv() {}

    /** MSRs {@link #hv_vcpu_enable_native_msr} accepts: those clients enable on the real framework. */
    private static final Set<Integer> NATIVE_CAPABLE = Set.of(HV_MSR_IA32_TSC, HV_MSR_IA32_SYSENTER_CS,
            HV_MSR_IA32_SYSENTER_ESP, HV_MSR_IA32_SYSENTER_EIP, HV_MSR_IA32_STAR, HV_MSR_IA32_LSTAR,
            HV_MSR_IA32_CSTAR, HV_MSR_IA32_FMASK, HV_MSR_IA32_FS_BASE, HV_MSR_IA32_GS_BASE,
            HV_MSR_IA32_KERNEL_GS_BASE, HV_MSR_IA32_TSC_AUX);

    private static final Object LOCK = new Object();
    /** The process's VM, or null. */
    private static volatile VirtualMachine vm;
    /** vCPUs by id; replaced, never changed in place, so lookups need no lock. */
    private static volatile Vcpu[] vcpus = new Vcpu[0];
    private static final Set<Integer> nativeMsrs = new HashSet<>();

    @FunctionalInterface
    private interface Call {
        void run();
    }

    /** Runs a call and turns its outcome into an hv_return_t. */
    private static int call(Call call) {
        try {
            call.run();
            return HV_SUCCESS;
        } catch (RuntimeException e) {
            return code(e);
        }
    }

    /** The hv_return_t for a failure. */
    private static int code(RuntimeException failure) {
        return switch (failure) {
            case HvException e -> e.code().code();
            case IllegalStateException e -> HV_BAD_ARGUMENT;   // e.g. memory whose arena is gone
            default -> HV_ERROR;   // a kernel call failed in a way no hv_return_t describes better
        };
    }

    private static VirtualMachine requireVm() {
        VirtualMachine current = vm;
        if (current == null) {
            throw new HvException(HvReturn.BAD_ARGUMENT, "no VM: call hv_vm_create first");
        }
        return current;
    }

    private static Vcpu lookup(int id) {
        Vcpu[] table = vcpus;
        Vcpu vcpu = id >= 0 && id < table.length ? table[id] : null;
        if (vcpu == null) {
            throw new HvException(HvReturn.BAD_ARGUMENT, "no vCPU " + Integer.toUnsignedString(id));
        }
        return vcpu;
    }

    private static void requireOut(Object array, int length) {
        if (array == null || length < 1) {
            throw new HvException(HvReturn.BAD_ARGUMENT, "the out-parameter is null or empty");
        }
    }

    private static void requireOut(long[] value) {
        requireOut(value, value == null ? 0 : value.length);
    }

    /**
     * The idiomatic object behind a vCPU id, for what the framework has no function for (above all
     * {@link Vcpu#setCpuid}: KVM answers CPUID itself, so the client gives the answers in advance).
     * Owner thread only, like every vCPU call.
     */
    public static Vcpu vcpu(int vcpu) {
        Vcpu target = lookup(vcpu);
        target.readVmcs(VMCS_GUEST_RIP);   // the owner check
        return target;
    }

    // ---------------------------------------------------------------- VM

    /** Framework limits: {@link #HV_CAP_VCPUMAX} (vCPUs per VM), {@link #HV_CAP_ADDRSPACEMAX} (1: the default space). */
    public static int hv_capability(long capability, long[] value) {
        return call(() -> {
            requireOut(value);
            if (capability == HV_CAP_VCPUMAX) {
                Hypervisor.Support support = Hypervisor.support();
                if (!support.available()) {
                    throw new HvException(support.code(), support.reason());
                }
                value[0] = support.maxVcpus();
            } else if (capability == HV_CAP_ADDRSPACEMAX) {
                value[0] = 1;
            } else {
                throw new HvException(HvReturn.BAD_ARGUMENT, "unknown capability " + capability);
            }
        });
    }

    /**
     * Creates the process's VM. {@code HV_BUSY} if it has one. The mitigation flags are accepted and
     * have no effect (their meaning is not published); {@code HV_VM_ACCEL_APIC} is unsupported.
     */
    public static int hv_vm_create(long flags) {
        return call(() -> {
            long known = HV_VM_SPECIFY_MITIGATIONS | HV_VM_MITIGATION_A_ENABLE | HV_VM_MITIGATION_B_ENABLE
                    | HV_VM_MITIGATION_C_ENABLE | HV_VM_MITIGATION_D_ENABLE | HV_VM_MITIGATION_E_ENABLE;
            if ((flags & HV_VM_ACCEL_APIC) != 0) {
                throw new HvException(HvReturn.UNSUPPORTED, "HV_VM_ACCEL_APIC: the in-kernel APIC is not offered");
            }
            if ((flags & ~known) != 0) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "unknown VM flags 0x" + Long.toHexString(flags));
            }
            synchronized (LOCK) {
                if (vm != null) {
                    throw new HvException(HvReturn.BUSY, "this process already has a VM");
                }
                VirtualMachine created = VirtualMachine.create();
                try {
                    created.setMsrFilter(Set.of());   // until made native, every MSR access exits
                } catch (RuntimeException e) {
                    created.close();
                    throw e;
                }
                nativeMsrs.clear();
                vcpus = new Vcpu[0];
                vm = created;
            }
        });
    }

    /** Destroys the process's VM; {@code HV_BUSY} while it still has vCPUs. */
    public static int hv_vm_destroy() {
        return call(() -> {
            synchronized (LOCK) {
                VirtualMachine current = requireVm();
                for (Vcpu vcpu : vcpus) {
                    if (vcpu != null) {
                        throw new HvException(HvReturn.BUSY, "destroy the VM's vCPUs first");
                    }
                }
                vm = null;
                current.close();
            }
        });
    }

    /** Additional address spaces: not offered, since a KVM VM has one guest-physical space. */
    public static int hv_vm_space_create(int[] asid) {
        return call(() -> {
            requireOut(asid, asid == null ? 0 : asid.length);
            throw new HvException(HvReturn.UNSUPPORTED, "KVM gives a VM one guest-physical address space");
        });
    }

    public static int hv_vm_space_destroy(int asid) {
        return call(() -> {
            requireVm();
            throw new HvException(HvReturn.BAD_ARGUMENT, asid == HV_VM_SPACE_DEFAULT
                    ? "the default address space cannot be destroyed" : "no address space " + asid);
        });
    }

    /**
     * Maps {@code size} bytes of host memory, starting at {@code uva}, at {@code gpa}. The segment
     * must cover the whole range (a zero-length segment made from a raw address is refused: jhv
     * never maps memory it cannot vouch for).
     */
    public static int hv_vm_map(MemorySegment uva, long gpa, long size, long flags) {
        return hv_vm_map_space(HV_VM_SPACE_DEFAULT, uva, gpa, size, flags);
    }

    public static int hv_vm_unmap(long gpa, long size) {
        return hv_vm_unmap_space(HV_VM_SPACE_DEFAULT, gpa, size);
    }

    public static int hv_vm_protect(long gpa, long size, long flags) {
        return hv_vm_protect_space(HV_VM_SPACE_DEFAULT, gpa, size, flags);
    }

    public static int hv_vm_map_space(int asid, MemorySegment uva, long gpa, long size, long flags) {
        return call(() -> {
            VirtualMachine current = requireSpace(asid);
            if (uva == null || size <= 0 || uva.byteSize() < size) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "the host memory does not cover " + size + " bytes");
            }
            current.map(gpa, uva.asSlice(0, size), Protection.ofBits(flags));
        });
    }

    public static int hv_vm_unmap_space(int asid, long gpa, long size) {
        return call(() -> requireSpace(asid).unmap(gpa, size));
    }

    public static int hv_vm_protect_space(int asid, long gpa, long size, long flags) {
        return call(() -> requireSpace(asid).protect(gpa, size, Protection.ofBits(flags)));
    }

    private static VirtualMachine requireSpace(int asid) {
        VirtualMachine current = requireVm();
        if (asid != HV_VM_SPACE_DEFAULT) {
            throw new HvException(HvReturn.BAD_ARGUMENT, "no address space " + asid);
        }
        return current;
    }

    /** Sets every vCPU's TSC to {@code tsc}; {@code HV_UNSUPPORTED} where the host cannot offset the TSC. */
    public static int hv_vm_sync_tsc(long tsc) {
        return call(() -> requireVm().syncTsc(tsc));
    }

    /** Port-I/O notifiers deliver Mach messages, which Linux does not have. */
    public static int hv_vm_add_pio_notifier(int addr, long size, int value, int machPort, int flags) {
        return call(() -> {
            requireVm();
            throw new HvException(HvReturn.UNSUPPORTED, "PIO notifiers send Mach messages; there are none on Linux");
        });
    }

    public static int hv_vm_remove_pio_notifier(int addr, long size, int value, int machPort, int flags) {
        return hv_vm_add_pio_notifier(addr, size, value, machPort, flags);
    }

    // ---------------------------------------------------------------- vCPU life cycle

    /**
     * Creates a vCPU owned by the calling thread; {@code HV_BUSY} if the thread already owns one.
     * The id is the lowest free one, so the first vCPU is 0, the next 1.
     */
    public static int hv_vcpu_create(int[] vcpu, long flags) {
        return call(() -> {
            requireOut(vcpu, vcpu == null ? 0 : vcpu.length);
            if ((flags & ~(HV_VCPU_ACCEL_RDPMC | HV_VCPU_TSC_RELATIVE)) != 0) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "unknown vCPU flags 0x" + Long.toHexString(flags));
            }
            synchronized (LOCK) {
                VirtualMachine current = requireVm();
                for (Vcpu existing : vcpus) {
                    if (existing != null && existing.owner() == Thread.currentThread()) {
                        throw new HvException(HvReturn.BUSY, "this thread already owns vCPU " + existing.id());
                    }
                }
                Vcpu created = current.createVcpu();
                created.enableVmx();
                Vcpu[] table = java.util.Arrays.copyOf(vcpus, Math.max(vcpus.length, created.id() + 1));
                table[created.id()] = created;
                vcpus = table;
                vcpu[0] = created.id();
            }
        });
    }

    public static int hv_vcpu_destroy(int vcpu) {
        return call(() -> {
            synchronized (LOCK) {
                Vcpu target = lookup(vcpu);
                target.close();
                Vcpu[] table = vcpus.clone();
                table[vcpu] = null;
                vcpus = table;
            }
        });
    }

    /** Only the default space exists (see {@link #hv_vm_space_create}). */
    public static int hv_vcpu_set_space(int vcpu, int asid) {
        return call(() -> {
            lookup(vcpu).readVmcs(VMCS_GUEST_RIP);   // the owner check
            if (asid != HV_VM_SPACE_DEFAULT) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "no address space " + asid);
            }
        });
    }

    // ---------------------------------------------------------------- registers, FP state, MSRs

    public static int hv_vcpu_read_register(int vcpu, int reg, long[] value) {
        // The calls made after every exit avoid call(): a capturing lambda would allocate each time.
        try {
            requireOut(value);
            value[0] = lookup(vcpu).get(register(reg));
            return HV_SUCCESS;
        } catch (RuntimeException e) {
            return code(e);
        }
    }

    public static int hv_vcpu_write_register(int vcpu, int reg, long value) {
        try {
            lookup(vcpu).set(register(reg), value);
            return HV_SUCCESS;
        } catch (RuntimeException e) {
            return code(e);
        }
    }

    private static Register register(int id) {
        Register register = Register.ofId(id);
        if (register == null) {
            throw new HvException(HvReturn.BAD_ARGUMENT, "no register " + id + " (hv_x86_reg_t runs from 0 to "
                    + (HV_X86_REGISTERS_MAX - 1) + ")");
        }
        return register;
    }

    /** Copies the XSAVE-format FP state (4096 bytes) into {@code buffer}. */
    public static int hv_vcpu_read_fpstate(int vcpu, MemorySegment buffer, long size) {
        return call(() -> lookup(vcpu).readFpState(fpBuffer(buffer, size)));
    }

    public static int hv_vcpu_write_fpstate(int vcpu, MemorySegment buffer, long size) {
        return call(() -> lookup(vcpu).writeFpState(fpBuffer(buffer, size)));
    }

    private static MemorySegment fpBuffer(MemorySegment buffer, long size) {
        if (buffer == null || size < Vcpu.FP_STATE_BYTES || buffer.byteSize() < size) {
            throw new HvException(HvReturn.BAD_ARGUMENT, "the FP state needs a buffer of " + Vcpu.FP_STATE_BYTES
                    + " bytes");
        }
        return buffer;
    }

    /**
     * Lets the guest access {@code msr} without exits. KVM's MSR filter is per VM, so the MSR becomes
     * native for every vCPU of the VM.
     */
    public static int hv_vcpu_enable_native_msr(int vcpu, int msr, boolean enable) {
        return call(() -> {
            lookup(vcpu).readVmcs(VMCS_GUEST_RIP);   // the owner check
            if (!NATIVE_CAPABLE.contains(msr)) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "MSR 0x" + Integer.toHexString(msr)
                        + " cannot be made native");
            }
            synchronized (LOCK) {
                Set<Integer> wanted = new HashSet<>(nativeMsrs);
                if (enable) {
                    wanted.add(msr);
                } else {
                    wanted.remove(msr);
                }
                requireVm().setMsrFilter(wanted);
                nativeMsrs.clear();
                nativeMsrs.addAll(wanted);
            }
        });
    }

    /** Managed (PMU, LBR) MSRs: KVM here has no PMU for guests. */
    public static int hv_vcpu_enable_managed_msr(int vcpu, int msr, boolean enable) {
        return call(() -> {
            lookup(vcpu).readVmcs(VMCS_GUEST_RIP);
            throw new HvException(HvReturn.UNSUPPORTED, "managed MSRs need a guest PMU, which KVM does not give here");
        });
    }

    public static int hv_vcpu_set_msr_access(int vcpu, int msr, int flags) {
        return hv_vcpu_enable_managed_msr(vcpu, msr, true);
    }

    public static int hv_vcpu_read_msr(int vcpu, int msr, long[] value) {
        return call(() -> {
            requireOut(value);
            value[0] = lookup(vcpu).readMsr(msr);
        });
    }

    public static int hv_vcpu_write_msr(int vcpu, int msr, long value) {
        return call(() -> lookup(vcpu).writeMsr(msr, value));
    }

    /** Hands pending register writes to KVM now (deprecated on macOS 11; harmless here). */
    public static int hv_vcpu_flush(int vcpu) {
        return call(() -> lookup(vcpu).flush());
    }

    /** Makes KVM drop its cached guest translations (for the whole VM). */
    public static int hv_vcpu_invalidate_tlb(int vcpu) {
        return call(() -> lookup(vcpu).invalidateTlb());
    }

    // ---------------------------------------------------------------- running

    public static int hv_vcpu_run(int vcpu) {
        return hv_vcpu_run_until(vcpu, HV_DEADLINE_FOREVER);
    }

    /**
     * Runs until an exit the client must handle or until {@code deadline}, in nanoseconds of
     * {@link System#nanoTime()}'s clock ({@link #HV_DEADLINE_FOREVER}: no deadline). An expired
     * deadline is exit {@link #VMX_REASON_VMX_TIMER_EXPIRED}. Returns {@code HV_ERROR} when KVM
     * cannot go on (an instruction its emulator refuses, for example).
     */
    public static int hv_vcpu_run_until(int vcpu, long deadline) {
        try {
            lookup(vcpu).runVmx(deadline < 0 ? Long.MAX_VALUE : deadline);
            return HV_SUCCESS;
        } catch (RuntimeException e) {
            return code(e);
        }
    }

    /**
     * Makes the listed vCPUs leave the guest (exit {@link #VMX_REASON_IRQ}). Any thread. A vCPU not
     * in the guest keeps the request: its next run returns at once.
     */
    public static int hv_vcpu_interrupt(int[] vcpus, int count) {
        return call(() -> {
            if (vcpus == null || count < 0 || count > vcpus.length) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "bad vCPU list");
            }
            for (int i = 0; i < count; i++) {
                lookup(vcpus[i]);
            }
            for (int i = 0; i < count; i++) {
                lookup(vcpus[i]).interrupt();
            }
        });
    }

    /** Time the vCPU has spent running the guest, in ns. */
    public static int hv_vcpu_get_exec_time(int vcpu, long[] time) {
        return call(() -> {
            requireOut(time);
            time[0] = lookup(vcpu).execTimeNanos();
        });
    }

    /** Time the vCPU has spent halted outside the guest (HLT without HLT exiting), in ns. */
    public static int hv_vcpu_get_idle_time(int vcpu, long[] time) {
        return call(() -> {
            requireOut(time);
            time[0] = lookup(vcpu).idleTimeNanos();
        });
    }

    /** A monotonic clock that ticks at the host TSC rate (derived from the monotonic clock). */
    public static long hv_tsc_clock() {
        return TscClock.now();
    }

    /** Guest TSC = {@link #hv_tsc_clock()} + {@code offset}; {@code HV_UNSUPPORTED} where the host cannot offset it. */
    public static int hv_vcpu_set_tsc_relative(int vcpu, long offset) {
        return call(() -> {
            lookup(vcpu).readVmcs(VMCS_GUEST_RIP);
            requireVm().syncTsc(TscClock.now() + offset);
        });
    }

    /** There is no VMfail in jhv's model: entry failures are exits with bit 31 of the reason set. */
    public static int hv_vcpu_vmx_status(int vcpu, int[] status) {
        return call(() -> {
            requireOut(status, status == null ? 0 : status.length);
            lookup(vcpu).readVmcs(VMCS_GUEST_RIP);
            throw new HvException(HvReturn.ERROR, "no VM entry failed with VMfail");
        });
    }

    // ---------------------------------------------------------------- VMCS

    public static int hv_vmx_vcpu_read_vmcs(int vcpu, int field, long[] value) {
        try {
            requireOut(value);
            value[0] = lookup(vcpu).readVmcs(field);
            return HV_SUCCESS;
        } catch (RuntimeException e) {
            return code(e);
        }
    }

    public static int hv_vmx_vcpu_write_vmcs(int vcpu, int field, long value) {
        try {
            lookup(vcpu).writeVmcs(field, value);
            return HV_SUCCESS;
        } catch (RuntimeException e) {
            return code(e);
        }
    }

    public static int hv_vmx_vcpu_get_cap_write_vmcs(int vcpu, int field, long[] allowed0, long[] allowed1) {
        return call(() -> {
            requireOut(allowed0);
            requireOut(allowed1);
            long[] masks = lookup(vcpu).vmcsWriteCapability(field);
            allowed0[0] = masks[0];
            allowed1[0] = masks[1];
        });
    }

    /** Shadow VMCS (nested virtualisation): KVM exposes no VMX to guests here. */
    public static int hv_vmx_vcpu_read_shadow_vmcs(int vcpu, int field, long[] value) {
        return call(() -> {
            lookup(vcpu).readVmcs(VMCS_GUEST_RIP);
            throw new HvException(HvReturn.UNSUPPORTED, "no shadow VMCS: guests cannot use VMX here");
        });
    }

    public static int hv_vmx_vcpu_write_shadow_vmcs(int vcpu, int field, long value) {
        return hv_vmx_vcpu_read_shadow_vmcs(vcpu, field, new long[1]);
    }

    public static int hv_vmx_vcpu_set_shadow_access(int vcpu, int field, long flags) {
        return hv_vmx_vcpu_read_shadow_vmcs(vcpu, field, new long[1]);
    }

    /** The VMX capabilities jhv honours (see {@link VmxCapabilities}). */
    public static int hv_vmx_read_capability(int field, long[] value) {
        return call(() -> {
            requireOut(value);
            long capability = VmxCapabilities.read(field);
            if (capability == -1) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "unknown VMX capability " + field);
            }
            value[0] = capability;
        });
    }

    /**
     * MSR information: the guest's IA32_ARCH_CAPABILITIES as KVM reports it, and no PMU (the
     * PERF and valid-bit values are 0).
     */
    public static int hv_vmx_get_msr_info(int field, long[] value) {
        return call(() -> {
            requireOut(value);
            if (field < HV_VMX_INFO_MSR_IA32_ARCH_CAPABILITIES || field > HV_VMX_NEED_MSR_IA32_SPEC_CTRL) {
                throw new HvException(HvReturn.BAD_ARGUMENT, "unknown MSR information " + field);
            }
            value[0] = field == HV_VMX_INFO_MSR_IA32_ARCH_CAPABILITIES ? Hypervisor.featureMsr(
                    HV_MSR_IA32_ARCH_CAPABILITIES) : 0;
        });
    }

    /** Guest accesses to the APIC page at {@code gpa} exit as {@link #VMX_REASON_APIC_ACCESS}. */
    public static int hv_vmx_vcpu_set_apic_address(int vcpu, long gpa) {
        return call(() -> lookup(vcpu).setApicAccessPage(gpa));
    }
}
