package dev.jhv;

import java.nio.file.Files;
import java.nio.file.Path;

import dev.jhv.internal.kvm.Kvm;
import dev.jhv.internal.kvm.KvmCaps;
import dev.jhv.internal.linux.Errno;
import dev.jhv.internal.linux.SyscallException;

/**
 * Whether this machine can run guests: the analog of {@code sysctl kern.hv_support}.
 *
 * <pre>{@code
 * Hypervisor.Support support = Hypervisor.support();
 * if (!support.available()) {
 *     System.err.println(support.reason());
 * }
 * }</pre>
 */
public final class Hypervisor {
    private Hypervisor() {}

    /** The hardware-virtualisation backend behind {@code /dev/kvm}. */
    public enum Backend {
        /** Intel VT-x ({@code kvm_intel}): everything runs natively. */
        VMX("Intel VT-x"),
        /** AMD-V ({@code kvm_amd}). */
        SVM("AMD-V"),
        /**
         * KVM's PVM backend ({@code kvm_pvm}), used where no VT-x or AMD-V is available (for example
         * inside another VM): only 64-bit ring-3 guest code runs natively, every other mode is
         * emulated instruction by instruction.
         */
        PVM("PVM (paravirtualised, software-assisted)"),
        /** {@code /dev/kvm} exists but none of the known backend modules is loaded. */
        UNKNOWN("unknown");

        private final String description;

        Backend(String description) {
            this.description = description;
        }

        public String description() {
            return description;
        }
    }

    /** The outcome of the check. {@code code} is {@link HvReturn#SUCCESS} when available. */
    public record Support(HvReturn code, String reason, Backend backend, int apiVersion, int maxVcpus,
                          int memorySlots) {
        public boolean available() {
            return code == HvReturn.SUCCESS;
        }
    }

    /** Checks {@code /dev/kvm} now: exists, is accessible, speaks API 12, has the capabilities jhv needs. */
    public static Support support() {
        Backend backend = backend();
        try (Kvm kvm = openKvm()) {
            int version = kvm.apiVersion();
            int maxVcpus = kvm.checkExtension(KvmCaps.MAX_VCPUS);
            int slots = kvm.checkExtension(KvmCaps.NR_MEMSLOTS);
            return new Support(HvReturn.SUCCESS, "KVM API " + version + " on " + backend.description(), backend,
                    version, maxVcpus == 0 ? kvm.checkExtension(KvmCaps.NR_VCPUS) : maxVcpus, slots);
        } catch (HvException e) {
            return new Support(e.code(), e.getMessage(), backend, 0, 0, 0);
        }
    }

    /**
     * Opens {@code /dev/kvm} and checks that it can serve jhv; the exception says why not:
     * {@link HvReturn#NO_DEVICE} (absent, too old, lacking a capability) or {@link HvReturn#DENIED}
     * (no permission: the analog of a missing hypervisor entitlement).
     */
    static Kvm openKvm() {
        if (!Files.exists(Path.of(Kvm.DEVICE))) {
            throw new HvException(HvReturn.NO_DEVICE, Kvm.DEVICE + " does not exist: load the kvm module and a"
                    + " backend (kvm_intel, kvm_amd or kvm_pvm), or enable virtualisation for this machine");
        }
        Kvm kvm;
        try {
            kvm = Kvm.open();
        } catch (SyscallException e) {
            if (e.errno() == Errno.EACCES || e.errno() == Errno.EPERM) {
                throw new HvException(HvReturn.DENIED, "no permission to open " + Kvm.DEVICE + ": add the user to"
                        + " the device's group (usually 'kvm': sudo usermod -aG kvm $USER, then log in again)", e);
            }
            throw new HvException(HvReturn.NO_DEVICE, e.getMessage(), e);
        }
        try {
            int version = kvm.apiVersion();
            if (version != KvmCaps.KVM_API_VERSION) {
                throw new HvException(HvReturn.NO_DEVICE, "KVM API version " + version + ", jhv needs "
                        + KvmCaps.KVM_API_VERSION);
            }
            for (int capability : REQUIRED_CAPABILITIES) {
                if (kvm.checkExtension(capability) == 0) {
                    throw new HvException(HvReturn.NO_DEVICE, "KVM lacks capability " + capability
                            + " that jhv needs");
                }
            }
            return kvm;
        } catch (RuntimeException e) {
            kvm.close();
            throw e;
        }
    }

    private static volatile Kvm system;

    /**
     * The process's {@code /dev/kvm}, opened and checked once on first use and kept open, as a
     * VMM keeps it: every VM is created through it. A failed open is not remembered, so the next
     * call tries again (after, say, the user was given access).
     */
    static Kvm system() {
        Kvm current = system;
        if (current == null) {
            synchronized (Hypervisor.class) {
                current = system;
                if (current == null) {
                    current = openKvm();
                    system = current;
                }
            }
        }
        return current;
    }

    private static final int[] REQUIRED_CAPABILITIES = {KvmCaps.USER_MEMORY, KvmCaps.SYNC_REGS,
        KvmCaps.IMMEDIATE_EXIT, KvmCaps.VCPU_EVENTS, KvmCaps.XSAVE, KvmCaps.XCRS, KvmCaps.DEBUGREGS,
        KvmCaps.READONLY_MEM};

    /** The host TSC frequency KVM gives guests, in kHz. */
    public static long tscFrequencyKhz() {
        try (var vm = system().createVm()) {
            return vm.tscKhz();
        }
    }

    /**
     * The value KVM gives guests for a feature MSR (such as IA32_ARCH_CAPABILITIES, 0x10a), or 0
     * if KVM does not report that MSR.
     */
    public static long featureMsr(int index) {
        return system().featureMsr(index);
    }

    /** The backend module that is loaded, from {@code /sys/module}. */
    public static Backend backend() {
        if (Files.isDirectory(Path.of("/sys/module/kvm_intel"))) {
            return Backend.VMX;
        }
        if (Files.isDirectory(Path.of("/sys/module/kvm_amd"))) {
            return Backend.SVM;
        }
        if (Files.isDirectory(Path.of("/sys/module/kvm_pvm"))) {
            return Backend.PVM;
        }
        return Backend.UNKNOWN;
    }

}
