package dev.jhv;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import dev.jhv.internal.kvm.KvmCaps;
import dev.jhv.vmx.VmcsEncoding;
import dev.jhv.vmx.VmxCapabilities;

import static dev.jhv.vmx.VmcsFields.*;
import static dev.jhv.vmx.VmxControls.*;
import static dev.jhv.vmx.VmxExitReasons.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The VMX view of one vCPU: a software VMCS over the vCPU's real state, and a run that reports
 * KVM's exits the way VT-x reports them to a Hypervisor.framework client.
 *
 * <p>Guest-state fields are the vCPU's registers, segments, MSRs and event state (the same storage
 * the idiomatic API uses). Control fields live here and are checked against
 * {@link VmxCapabilities}. Exit-information fields are filled on every exit and read-only.
 */
final class Vmx {
    static final int ENTRY_FAILURE = 0x80000000;

    private static final SegmentRegister[] SEGMENT_ORDER = {SegmentRegister.ES, SegmentRegister.CS,
        SegmentRegister.SS, SegmentRegister.DS, SegmentRegister.FS, SegmentRegister.GS, SegmentRegister.LDTR,
        SegmentRegister.TR};

    private static final long CR4_VMXE = 1L << 13;
    private static final long CR0_PE = 1;
    private static final long EFER_LMA = 1L << 10;
    private static final long RFLAGS_IF = 1L << 9;
    private static final int MSR_SYSENTER_CS = 0x174;
    private static final int MSR_SYSENTER_ESP = 0x175;
    private static final int MSR_SYSENTER_EIP = 0x176;
    private static final int MSR_DEBUGCTL = 0x1d9;
    private static final int MSR_PAT = 0x277;

    private static final long EXCEPTION_INJECTED = RunStructure.events("exception.injected");
    private static final long EXCEPTION_NR = RunStructure.events("exception.nr");
    private static final long EXCEPTION_HAS_ERROR = RunStructure.events("exception.has_error_code");
    private static final long EXCEPTION_PENDING = RunStructure.events("exception.pending");
    private static final long EXCEPTION_ERROR = RunStructure.events("exception.error_code");
    private static final long INTERRUPT_INJECTED = RunStructure.events("interrupt.injected");
    private static final long INTERRUPT_NR = RunStructure.events("interrupt.nr");
    private static final long INTERRUPT_SOFT = RunStructure.events("interrupt.soft");
    private static final long INTERRUPT_SHADOW = RunStructure.events("interrupt.shadow");
    private static final long NMI_INJECTED = RunStructure.events("nmi.injected");
    private static final long NMI_MASKED = RunStructure.events("nmi.masked");
    private static final long EVENTS_FLAGS = RunStructure.events("flags");
    /** KVM's interrupt-shadow bits in {@code interrupt.shadow}. */
    private static final int KVM_SHADOW_MOV_SS = 1;
    private static final int KVM_SHADOW_STI = 2;

    /** Deadlines of run_until: one daemon thread kicks the vCPUs whose time is up. */
    private static final ScheduledExecutorService DEADLINES = Executors.newSingleThreadScheduledExecutor(task -> {
        Thread thread = new Thread(task, "jhv-deadlines");
        thread.setDaemon(true);
        return thread;
    });

    private final Vcpu vcpu;
    private final MemorySegment run;
    private final long[] fields = new long[VmcsEncoding.TABLE_SIZE];
    private final GuestInstructions instructions;
    /** CR4.VMXE as the client wrote it: kept here, since KVM refuses it in the real CR4. */
    private boolean cr4Vmxe;
    private long activityState;
    private long apicAccessPage = -1;
    private volatile boolean deadlineExpired;
    private String entryFailure = "";

    Vmx(Vcpu vcpu) {
        this.vcpu = vcpu;
        this.run = vcpu.runStructure();
        this.instructions = new GuestInstructions(vcpu);
        vcpu.vmxView = true;
        set(VMCS_CTRL_PIN_BASED, VmxCapabilities.PIN_MUST);
        set(VMCS_CTRL_CPU_BASED, VmxCapabilities.PROC_MUST);
        set(VMCS_CTRL_CPU_BASED2, VmxCapabilities.PROC2_MUST);
        set(VMCS_CTRL_VMENTRY_CONTROLS, VmxCapabilities.ENTRY_MUST);
        set(VMCS_CTRL_VMEXIT_CONTROLS, VmxCapabilities.EXIT_MUST);
        set(VMCS_CTRL_CR0_MASK, VmxCapabilities.CR0_MASK_MUST);
        set(VMCS_GUEST_LINK_POINTER, -1L);
    }

    private long get(int field) {
        return fields[VmcsEncoding.index(field)];
    }

    private void set(int field, long value) {
        fields[VmcsEncoding.index(field)] = value;
    }

    // ---------------------------------------------------------------- capabilities

    /** {@code hv_vmx_vcpu_get_cap_write_vmcs}: {allowed_0, allowed_1} of a writable field. */
    static long[] writeCapability(int field) {
        long[] masks = VmxCapabilities.writeMasks(field);
        if (masks != null) {
            return masks;
        }
        access(field, true);
        return new long[] {0, VmcsEncoding.mask(field)};
    }

    // ---------------------------------------------------------------- VMCS access

    private enum Access { GUEST, CONTROL, EXIT_INFO, READ_ONLY_CONTROL, FRAMEWORK }

    /** How the client may use a field; throws for fields outside Apple's list when writing. */
    private static Access access(int field, boolean write) {
        if (!VmcsEncoding.wellFormed(field) || field >= VMCS_MAX) {
            throw HvException.badArgument("0x" + Integer.toHexString(field) + " is not a VMCS field encoding");
        }
        Access access = switch (field) {
            case VMCS_CTRL_TSC_OFFSET, VMCS_CTRL_APIC_ACCESS -> Access.READ_ONLY_CONTROL;
            case VMCS_CTRL_PIN_BASED, VMCS_CTRL_CPU_BASED, VMCS_CTRL_CPU_BASED2, VMCS_CTRL_VMENTRY_CONTROLS,
                    VMCS_CTRL_VMEXIT_CONTROLS, VMCS_CTRL_EXC_BITMAP, VMCS_CTRL_PF_ERROR_MASK,
                    VMCS_CTRL_PF_ERROR_MATCH, VMCS_CTRL_VMENTRY_IRQ_INFO, VMCS_CTRL_VMENTRY_EXC_ERROR,
                    VMCS_CTRL_VMENTRY_INSTR_LEN, VMCS_CTRL_TPR_THRESHOLD, VMCS_CTRL_PLE_GAP, VMCS_CTRL_PLE_WINDOW,
                    VMCS_CTRL_CR0_MASK, VMCS_CTRL_CR4_MASK, VMCS_CTRL_CR0_SHADOW, VMCS_CTRL_CR4_SHADOW,
                    VMCS_CTRL_CR3_VALUE0, VMCS_CTRL_CR3_VALUE1, VMCS_CTRL_CR3_VALUE2, VMCS_CTRL_CR3_VALUE3 ->
                    Access.CONTROL;
            default -> switch (VmcsEncoding.type(field)) {
                case EXIT_INFORMATION -> Access.EXIT_INFO;
                case GUEST_STATE -> isClientGuestField(field) ? Access.GUEST : Access.FRAMEWORK;
                default -> Access.FRAMEWORK;
            };
        };
        if (write && access != Access.GUEST && access != Access.CONTROL) {
            throw HvException.badArgument("VMCS field 0x" + Integer.toHexString(field) + " is "
                    + (access == Access.FRAMEWORK ? "owned by the framework" : "read-only") + " and cannot be written");
        }
        return access;
    }

    private static boolean isClientGuestField(int field) {
        return switch (field) {
            case VMCS_GUEST_INT_STATUS, VMCS_GUESTPML_INDEX, VMCS_GUEST_SMBASE, VMCS_GUEST_VMX_TIMER_VALUE,
                    VMCS_GUEST_LINK_POINTER, VMCS_GUEST_IA32_PERF_GLOBAL_CTRL, VMCS_GUEST_IA32_BNDCFGS,
                    VMCS_GUEST_IA32_RTIT_CTL, VMCS_GUEST_IA32_PKRS, VMCS_GUEST_IA32_S_CET, VMCS_GUEST_SSP,
                    VMCS_GUEST_IA32_INTR_SSP_TABLE_ADDR -> false;
            default -> true;
        };
    }

    long read(int field) {
        Access access = access(field, false);
        if (access != Access.GUEST) {
            return get(field);
        }
        return readGuest(field);
    }

    void write(int field, long value) {
        Access access = access(field, true);
        if ((value & ~VmcsEncoding.mask(field)) != 0) {
            throw HvException.badArgument("0x" + Long.toHexString(value) + " does not fit VMCS field 0x"
                    + Integer.toHexString(field) + " (" + VmcsEncoding.width(field) + ")");
        }
        if (access == Access.CONTROL) {
            writeControl(field, value);
        } else {
            writeGuest(field, value);
        }
    }

    private void writeControl(int field, long value) {
        long[] allowed = switch (field) {
            case VMCS_CTRL_PIN_BASED, VMCS_CTRL_CPU_BASED, VMCS_CTRL_CPU_BASED2, VMCS_CTRL_VMENTRY_CONTROLS,
                    VMCS_CTRL_VMEXIT_CONTROLS, VMCS_CTRL_CR0_MASK -> writeCapability(field);
            default -> null;
        };
        if (allowed != null && ((value & allowed[0]) != allowed[0] || (value & ~allowed[1]) != 0)) {
            throw HvException.badArgument(String.format("0x%x is not a valid value of VMCS field 0x%x: bits 0x%x must"
                    + " be 1 and bits 0x%x may not be 1", value, field, allowed[0] & ~value, value & ~allowed[1]));
        }
        set(field, value);
        if (field == VMCS_CTRL_EXC_BITMAP) {
            // KVM can hand #BP and #DB to user space (its guest-debug interface); no other vector.
            vcpu.applyGuestDebug(((value & 1 << 3) != 0 ? KvmCaps.GUESTDBG_USE_SW_BP : 0)
                    | ((value & 1 << 1) != 0 ? KvmCaps.GUESTDBG_USE_HW_BP : 0));
        }
    }

    private long readGuest(int field) {
        int segment = segmentIndex(field);
        if (segment >= 0) {
            Segment s = vcpu.segment(SEGMENT_ORDER[segment]);
            return switch (field & 0xfc00) {
                case 0x0800 -> s.selector();
                case 0x4800 -> (field & 0xff) < 0x14 ? Integer.toUnsignedLong(s.limit()) : s.accessRights();
                default -> s.base();
            };
        }
        return switch (field) {
            case VMCS_GUEST_CR0 -> vcpu.get(Register.CR0);
            case VMCS_GUEST_CR3 -> vcpu.get(Register.CR3);
            case VMCS_GUEST_CR4 -> vcpu.get(Register.CR4) | (cr4Vmxe ? CR4_VMXE : 0);
            case VMCS_GUEST_RIP -> vcpu.get(Register.RIP);
            case VMCS_GUEST_RSP -> vcpu.get(Register.RSP);
            case VMCS_GUEST_RFLAGS -> vcpu.get(Register.RFLAGS);
            case VMCS_GUEST_DR7 -> vcpu.get(Register.DR7);
            case VMCS_GUEST_GDTR_BASE -> vcpu.get(Register.GDT_BASE);
            case VMCS_GUEST_GDTR_LIMIT -> vcpu.get(Register.GDT_LIMIT);
            case VMCS_GUEST_IDTR_BASE -> vcpu.get(Register.IDT_BASE);
            case VMCS_GUEST_IDTR_LIMIT -> vcpu.get(Register.IDT_LIMIT);
            case VMCS_GUEST_IA32_EFER -> vcpu.readMsr(Vcpu.MSR_EFER);
            case VMCS_GUEST_IA32_PAT -> vcpu.readMsr(MSR_PAT);
            case VMCS_GUEST_IA32_DEBUGCTL -> vcpu.readMsr(MSR_DEBUGCTL);
            case VMCS_GUEST_IA32_SYSENTER_CS -> vcpu.readMsr(MSR_SYSENTER_CS);
            case VMCS_GUEST_SYSENTER_ESP -> vcpu.readMsr(MSR_SYSENTER_ESP);
            case VMCS_GUEST_SYSENTER_EIP -> vcpu.readMsr(MSR_SYSENTER_EIP);
            case VMCS_GUEST_INTERRUPTIBILITY -> interruptibility();
            case VMCS_GUEST_ACTIVITY_STATE -> activityState;
            default -> get(field);   // PDPTEs, pending debug exceptions: kept, with no effect on KVM
        };
    }

    private void writeGuest(int field, long value) {
        int segment = segmentIndex(field);
        if (segment >= 0) {
            SegmentRegister register = SEGMENT_ORDER[segment];
            Segment s = vcpu.segment(register);
            vcpu.setSegment(register, switch (field & 0xfc00) {
                case 0x0800 -> new Segment((int) value, s.base(), s.limit(), s.accessRights());
                case 0x4800 -> (field & 0xff) < 0x14 ? new Segment(s.selector(), s.base(), (int) value, s.accessRights())
                        : new Segment(s.selector(), s.base(), s.limit(), (int) value);
                default -> new Segment(s.selector(), value, s.limit(), s.accessRights());
            });
            return;
        }
        switch (field) {
            case VMCS_GUEST_CR0 -> {
                long[] allowed = writeCapability(field);
                if ((value & ~allowed[1]) != 0) {
                    throw HvException.badArgument("guest CR0 0x" + Long.toHexString(value)
                            + " sets CD or NW, which must stay 0");
                }
                vcpu.set(Register.CR0, value);
            }
            case VMCS_GUEST_CR3 -> vcpu.set(Register.CR3, value);
            case VMCS_GUEST_CR4 -> {
                if ((value & ~VmxCapabilities.CR4_FIXED1) != 0) {
                    throw HvException.badArgument("guest CR4 0x" + Long.toHexString(value) + " sets reserved bits");
                }
                cr4Vmxe = (value & CR4_VMXE) != 0;
                vcpu.set(Register.CR4, value & ~CR4_VMXE);
            }
            case VMCS_GUEST_RIP -> vcpu.set(Register.RIP, value);
            case VMCS_GUEST_RSP -> vcpu.set(Register.RSP, value);
            case VMCS_GUEST_RFLAGS -> vcpu.set(Register.RFLAGS, value);
            case VMCS_GUEST_DR7 -> vcpu.set(Register.DR7, value);
            case VMCS_GUEST_GDTR_BASE -> vcpu.set(Register.GDT_BASE, value);
            case VMCS_GUEST_GDTR_LIMIT -> vcpu.set(Register.GDT_LIMIT, value);
            case VMCS_GUEST_IDTR_BASE -> vcpu.set(Register.IDT_BASE, value);
            case VMCS_GUEST_IDTR_LIMIT -> vcpu.set(Register.IDT_LIMIT, value);
            case VMCS_GUEST_IA32_EFER -> vcpu.writeMsr(Vcpu.MSR_EFER, value);
            case VMCS_GUEST_IA32_PAT -> vcpu.writeMsr(MSR_PAT, value);
            case VMCS_GUEST_IA32_DEBUGCTL -> vcpu.writeMsr(MSR_DEBUGCTL, value);
            case VMCS_GUEST_IA32_SYSENTER_CS -> vcpu.writeMsr(MSR_SYSENTER_CS, value);
            case VMCS_GUEST_SYSENTER_ESP -> vcpu.writeMsr(MSR_SYSENTER_ESP, value);
            case VMCS_GUEST_SYSENTER_EIP -> vcpu.writeMsr(MSR_SYSENTER_EIP, value);
            case VMCS_GUEST_INTERRUPTIBILITY -> setInterruptibility(value);
            case VMCS_GUEST_ACTIVITY_STATE -> {
                if (value > 1) {
                    throw HvException.badArgument("activity state " + value + ": only 0 (active) and 1 (HLT) may be set");
                }
                activityState = value;
            }
            default -> set(field, value);
        }
    }

    /** Index into {@link #SEGMENT_ORDER} for segment selector/limit/AR/base fields, else -1. */
    private static int segmentIndex(int field) {
        int base = switch (field & 0xfc00) {
            case 0x0800 -> 0x0800;
            case 0x4800 -> (field & 0xff) < 0x10 ? 0x4800 : (field & 0xff) >= 0x14 && (field & 0xff) < 0x24 ? 0x4814 : -1;
            case 0x6800 -> (field & 0xff) >= 0x06 && (field & 0xff) < 0x16 ? 0x6806 : -1;
            default -> -1;
        };
        if (base < 0) {
            return -1;
        }
        int index = (field - base) >> 1;
        return index < SEGMENT_ORDER.length ? index : -1;
    }

    private long interruptibility() {
        int shadow = run.get(JAVA_BYTE, INTERRUPT_SHADOW);
        return ((shadow & KVM_SHADOW_STI) != 0 ? GUEST_INTRBILITY_STI_BLOCKING : 0)
                | ((shadow & KVM_SHADOW_MOV_SS) != 0 ? GUEST_INTRBILITY_MOVSS_BLOCKING : 0)
                | (run.get(JAVA_BYTE, NMI_MASKED) != 0 ? GUEST_INTRBILITY_NMI_BLOCKING : 0);
    }

    private void setInterruptibility(long value) {
        if ((value & ~0x1fL) != 0) {
            throw HvException.badArgument("interruptibility 0x" + Long.toHexString(value) + " sets reserved bits");
        }
        int shadow = ((value & GUEST_INTRBILITY_STI_BLOCKING) != 0 ? KVM_SHADOW_STI : 0)
                | ((value & GUEST_INTRBILITY_MOVSS_BLOCKING) != 0 ? KVM_SHADOW_MOV_SS : 0);
        run.set(JAVA_BYTE, INTERRUPT_SHADOW, (byte) shadow);
        run.set(JAVA_BYTE, NMI_MASKED, (byte) ((value & GUEST_INTRBILITY_NMI_BLOCKING) != 0 ? 1 : 0));
        run.set(JAVA_INT, EVENTS_FLAGS, run.get(JAVA_INT, EVENTS_FLAGS) | KvmCaps.VCPUEVENT_VALID_SHADOW);
        vcpu.markDirtyGroup(KvmCaps.SYNC_X86_EVENTS);
    }

    void setApicAccessPage(long gpa) {
        if (gpa % 4096 != 0) {
            throw HvException.badArgument("APIC page 0x" + Long.toHexString(gpa) + " is not page aligned");
        }
        apicAccessPage = gpa;
        set(VMCS_CTRL_APIC_ACCESS, gpa);
    }

    String entryFailure() {
        return entryFailure;
    }

    // ---------------------------------------------------------------- running

    /**
     * Runs until an exit the client must see, or the deadline (System.nanoTime clock,
     * {@code Long.MAX_VALUE} for none), and fills the exit-information fields.
     */
    void run(long deadline) {
        clearExitInformation();
        if (!checkEntry()) {
            reportExit(ENTRY_FAILURE | VMX_REASON_VMENTRY_GUEST, 0, 0);
            return;
        }
        boolean injecting = injectEvent();
        if (activityState == 1 && !injecting) {
            // Halted, and nothing to wake it: wait as the CPU would, for a kick or the deadline.
            reportExit(vcpu.awaitInterrupt(deadline) ? VMX_REASON_IRQ : VMX_REASON_VMX_TIMER_EXPIRED, 0, 0);
            return;
        }
        activityState = 0;
        if (deadline != Long.MAX_VALUE && deadline - System.nanoTime() <= 0) {
            reportExit(VMX_REASON_VMX_TIMER_EXPIRED, 0, 0);
            return;
        }
        run.set(JAVA_BYTE, RunStructure.REQUEST_INTERRUPT_WINDOW,
                (byte) ((get(VMCS_CTRL_CPU_BASED) & CPU_BASED_IRQ_WND) != 0 ? 1 : 0));
        prefillStringIn();
        VmExit exit = runWithDeadline(deadline);
        vcpu.completionNextRip = -1;
        reportInFlightEvent();
        switch (exit) {
            case VmExit.PortIo io -> portIo(io);
            case VmExit.Mmio mmio -> mmio(mmio);
            case VmExit.MsrAccess msr -> reportExit(msr.isWrite() ? VMX_REASON_WRMSR : VMX_REASON_RDMSR, 0, 2);
            case VmExit.Halt halt -> halt(deadline);
            case VmExit.Interrupted interrupted -> reportExit(deadlineExpired ? VMX_REASON_VMX_TIMER_EXPIRED
                    : VMX_REASON_IRQ, 0, 0);
            case VmExit.InterruptWindow window -> reportExit(VMX_REASON_IRQ_WND, 0, 0);
            case VmExit.Shutdown shutdown -> reportExit(VMX_REASON_TRIPLE_FAULT, 0, 0);
            case VmExit.Debug debug when debug.exception() == 3 -> {
                set(VMCS_RO_VMEXIT_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_SOFT_EXC | 3);
                reportExit(VMX_REASON_EXC_NMI, 0, 1);
            }
            case VmExit.Debug debug -> {
                set(VMCS_RO_VMEXIT_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_HARD_EXC | debug.exception());
                reportExit(VMX_REASON_EXC_NMI, debug.dr6() & 0x600f, 0);
            }
            case VmExit.EntryFailure failure -> {
                entryFailure = failure.toString();
                reportExit(ENTRY_FAILURE | VMX_REASON_VMENTRY_GUEST, 0, 0);
            }
            case VmExit.InternalError error when isBreakpoint(error) -> {
                // An instruction emulator that cannot deliver INT3 stops at it: that is exactly where
                // VT-x reports a #BP the exception bitmap asks for.
                set(VMCS_RO_VMEXIT_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_SOFT_EXC | 3);
                reportExit(VMX_REASON_EXC_NMI, 0, 1);
            }
            case VmExit.InternalError error -> throw new HvException(HvReturn.ERROR, "vCPU " + vcpu.id() + ": "
                    + error.describe());
            case VmExit.Other other -> throw new HvException(HvReturn.ERROR, "vCPU " + vcpu.id() + ": unexpected "
                    + other);
        }
    }

    private boolean isBreakpoint(VmExit.InternalError error) {
        byte[] bytes = error.instructionBytes();
        return (get(VMCS_CTRL_EXC_BITMAP) & 1 << 3) != 0 && bytes.length > 0 && (bytes[0] & 0xff) == 0xcc;
    }

    private VmExit runWithDeadline(long deadline) {
        if (deadline == Long.MAX_VALUE) {
            deadlineExpired = false;
            return vcpu.run();
        }
        deadlineExpired = false;
        ScheduledFuture<?> timer = DEADLINES.schedule(() -> {
            deadlineExpired = true;
            vcpu.interrupt();
        }, Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        try {
            return vcpu.run();
        } finally {
            timer.cancel(false);
        }
    }

    private void clearExitInformation() {
        set(VMCS_RO_EXIT_REASON, 0);
        set(VMCS_RO_EXIT_QUALIFIC, 0);
        set(VMCS_RO_VMEXIT_INSTR_LEN, 0);
        set(VMCS_RO_VMEXIT_IRQ_INFO, 0);
        set(VMCS_RO_VMEXIT_IRQ_ERROR, 0);
        set(VMCS_RO_IDT_VECTOR_INFO, 0);
        set(VMCS_RO_IDT_VECTOR_ERROR, 0);
        set(VMCS_RO_VMX_INSTR_INFO, 0);
        set(VMCS_RO_GUEST_LIN_ADDR, 0);
        set(VMCS_GUEST_PHYSICAL_ADDRESS, 0);
        set(VMCS_RO_INSTR_ERROR, 0);
    }

    private void reportExit(long reason, long qualification, long instructionLength) {
        set(VMCS_RO_EXIT_REASON, reason & 0xffffffffL);
        set(VMCS_RO_EXIT_QUALIFIC, qualification);
        set(VMCS_RO_VMEXIT_INSTR_LEN, instructionLength);
    }

    /** The VM-entry checks of the SDM that KVM does not make itself; false (and why) on failure. */
    private boolean checkEntry() {
        long efer = vcpu.readMsr(Vcpu.MSR_EFER);
        boolean ia32e = (get(VMCS_CTRL_VMENTRY_CONTROLS) & VMENTRY_GUEST_IA32E) != 0;
        boolean protectedMode = (vcpu.get(Register.CR0) & CR0_PE) != 0;
        String problem = null;
        if (ia32e != ((efer & EFER_LMA) != 0)) {
            problem = "the VM-entry control \"IA-32e mode guest\" is " + (ia32e ? "1" : "0")
                    + " but EFER.LMA is " + (ia32e ? "0" : "1") + "; they must agree";
        } else if (protectedMode && (vcpu.segmentAccessRights(SegmentRegister.CS) & Segment.AR_UNUSABLE) != 0) {
            problem = "CS is unusable (access rights bit 16) in protected mode";
        } else if (protectedMode && (vcpu.segmentAccessRights(SegmentRegister.TR) & Segment.AR_UNUSABLE) != 0) {
            problem = "TR is unusable in protected mode";
        } else if (ia32e && (vcpu.segmentAccessRights(SegmentRegister.TR) & 0xf) != 11) {
            problem = "TR must be a busy 64-bit TSS (type 11) in IA-32e mode, not type "
                    + (vcpu.segmentAccessRights(SegmentRegister.TR) & 0xf);
        } else {
            problem = checkInjection(protectedMode);
        }
        entryFailure = problem == null ? "" : problem;
        return problem == null;
    }

    private String checkInjection(boolean protectedMode) {
        long info = get(VMCS_CTRL_VMENTRY_IRQ_INFO);
        if ((info & IRQ_INFO_VALID) == 0) {
            return null;
        }
        long type = info & IRQ_INFO_TYPE_MASK;
        int vector = (int) (info & 0xff);
        if ((info & 0x7ffff000L) != 0 || type == 1L << 8 || type == 7L << 8) {
            return "VM-entry interruption information 0x" + Long.toHexString(info) + " has reserved bits or type";
        }
        if (type == IRQ_INFO_EXT_IRQ && ((vcpu.get(Register.RFLAGS) & RFLAGS_IF) == 0
                || (interruptibility() & (GUEST_INTRBILITY_STI_BLOCKING | GUEST_INTRBILITY_MOVSS_BLOCKING)) != 0)) {
            return "an external interrupt is injected while the guest cannot take one (RFLAGS.IF = 0 or STI/MOV SS"
                    + " blocking)";
        }
        if (type == IRQ_INFO_HARD_EXC && vector == 2 || type == IRQ_INFO_NMI && vector != 2) {
            return "NMI must be injected as type NMI with vector 2";
        }
        if ((info & IRQ_INFO_ERROR_VALID) != 0 && (!protectedMode || type != IRQ_INFO_HARD_EXC
                || !hasErrorCode(vector))) {
            return "an error code is delivered " + (protectedMode ? "with vector " + vector + ", which has none"
                    : "in real mode");
        }
        if ((type == IRQ_INFO_SOFT_IRQ || type == IRQ_INFO_SOFT_EXC || type == IRQ_INFO_PRIV_SOFT_EXC)) {
            long length = get(VMCS_CTRL_VMENTRY_INSTR_LEN);
            if (length < 1 || length > 15) {
                return "a software interrupt or exception is injected with instruction length " + length
                        + " (VMCS_CTRL_VMENTRY_INSTR_LEN must be 1-15)";
            }
        }
        return null;
    }

    private static boolean hasErrorCode(int vector) {
        return vector == 8 || vector >= 10 && vector <= 14 || vector == 17 || vector == 21;
    }

    /**
     * Hands the event in VMCS_CTRL_VMENTRY_IRQ_INFO to KVM through the vCPU event state, and
     * clears the valid bit as a VM entry does. Software interrupts and exceptions are delivered
     * as the instruction would deliver them: return address past it (RIP + instruction length).
     */
    private boolean injectEvent() {
        long info = get(VMCS_CTRL_VMENTRY_IRQ_INFO);
        if ((info & IRQ_INFO_VALID) == 0) {
            return false;
        }
        set(VMCS_CTRL_VMENTRY_IRQ_INFO, info & ~IRQ_INFO_VALID);
        long type = info & IRQ_INFO_TYPE_MASK;
        byte vector = (byte) info;
        if (type == IRQ_INFO_NMI) {
            run.set(JAVA_BYTE, NMI_INJECTED, (byte) 1);
        } else if (type == IRQ_INFO_HARD_EXC) {
            run.set(JAVA_BYTE, EXCEPTION_INJECTED, (byte) 1);
            run.set(JAVA_BYTE, EXCEPTION_PENDING, (byte) 0);
            run.set(JAVA_BYTE, EXCEPTION_NR, vector);
            boolean error = (info & IRQ_INFO_ERROR_VALID) != 0;
            run.set(JAVA_BYTE, EXCEPTION_HAS_ERROR, (byte) (error ? 1 : 0));
            run.set(JAVA_INT, EXCEPTION_ERROR, error ? (int) get(VMCS_CTRL_VMENTRY_EXC_ERROR) : 0);
        } else {
            if (type != IRQ_INFO_EXT_IRQ) {
                vcpu.set(Register.RIP, vcpu.get(Register.RIP) + get(VMCS_CTRL_VMENTRY_INSTR_LEN));
            }
            run.set(JAVA_BYTE, INTERRUPT_INJECTED, (byte) 1);
            run.set(JAVA_BYTE, INTERRUPT_NR, vector);
            run.set(JAVA_BYTE, INTERRUPT_SOFT, (byte) 0);
        }
        vcpu.markDirtyGroup(KvmCaps.SYNC_X86_EVENTS);
        return true;
    }

    /**
     * An event KVM was delivering when the exit came is re-delivered by KVM itself on the next
     * entry; on VT-x it is reported in the IDT-vectoring fields and the client re-injects it. So
     * report it there and take it back from KVM, so that it is delivered once, by the client.
     */
    private void reportInFlightEvent() {
        long info = 0;
        long error = 0;
        if (run.get(JAVA_BYTE, EXCEPTION_INJECTED) != 0) {
            info = IRQ_INFO_VALID | IRQ_INFO_HARD_EXC | (run.get(JAVA_BYTE, EXCEPTION_NR) & 0xff);
            if (run.get(JAVA_BYTE, EXCEPTION_HAS_ERROR) != 0) {
                info |= IRQ_INFO_ERROR_VALID;
                error = Integer.toUnsignedLong(run.get(JAVA_INT, EXCEPTION_ERROR));
            }
            run.set(JAVA_BYTE, EXCEPTION_INJECTED, (byte) 0);
        } else if (run.get(JAVA_BYTE, NMI_INJECTED) != 0) {
            info = IRQ_INFO_VALID | IRQ_INFO_NMI | 2;
            run.set(JAVA_BYTE, NMI_INJECTED, (byte) 0);
        } else if (run.get(JAVA_BYTE, INTERRUPT_INJECTED) != 0) {
            info = IRQ_INFO_VALID | (run.get(JAVA_BYTE, INTERRUPT_SOFT) != 0 ? IRQ_INFO_SOFT_IRQ : IRQ_INFO_EXT_IRQ)
                    | (run.get(JAVA_BYTE, INTERRUPT_NR) & 0xff);
            run.set(JAVA_BYTE, INTERRUPT_INJECTED, (byte) 0);
        }
        if (info != 0) {
            set(VMCS_RO_IDT_VECTOR_INFO, info);
            set(VMCS_RO_IDT_VECTOR_ERROR, error);
            vcpu.markDirtyGroup(KvmCaps.SYNC_X86_EVENTS);
        }
    }

    /**
     * Exit 30. KVM reports an IN before it executes (RIP at the instruction) and an OUT after it
     * (RIP past it); VT-x reports both at the instruction, so an OUT's RIP is moved back by the
     * instruction's length. Unless the client moves it on, the instruction runs again, as on VT-x.
     *
     * <p>String I/O: VT-x exits once, before the first element, and the client emulates the whole
     * instruction. KVM exits per element of a string OUT (after sending it) and once for a whole
     * string IN (before it). So a string OUT is reported with the first element undone in RSI
     * and RCX, and whatever KVM still has pending for the instruction is finished and discarded
     * before the next entry, on top of which the client's registers and memory stand.
     */
    private void portIo(VmExit.PortIo io) {
        long rip = vcpu.get(Register.RIP);
        GuestInstructions.PortInstruction instruction;
        long start = rip;
        if (io.isIn()) {
            instruction = instructions.portInstructionAt(rip, io);
        } else {
            instruction = instructions.stringOutAt(rip, io);
            if (instruction == null) {
                instruction = instructions.portInstructionBefore(rip, io);
                start = rip - instruction.length();
            }
        }
        if (start != rip) {
            vcpu.presentRip(start);
        }
        vcpu.completionNextRip = start + instruction.length();
        pendingStringIn = null;
        if (instruction.string()) {
            reportStringIo(io, instruction);
        }
        long qualification = (io.size() - 1) | (io.isIn() ? 1 << 3 : 0) | (instruction.string() ? 1 << 4 : 0)
                | (instruction.rep() ? 1 << 5 : 0) | (instruction.immediate() ? 1 << 6 : 0) | (long) io.port() << 16;
        set(VMCS_RO_VMX_INSTR_INFO, instruction.string()
                ? (long) instruction.addressSizeCode() << 7 | (io.isIn() ? 0 : (long) instruction.segmentCode() << 15) : 0);
        reportExit(VMX_REASON_IO, qualification, instruction.length());
    }

    private void reportStringIo(VmExit.PortIo io, GuestInstructions.PortInstruction instruction) {
        long mask = instruction.addressMask();
        long step = (vcpu.get(Register.RFLAGS) & 1L << 10) != 0 ? -io.size() : io.size();
        if (io.isIn()) {
            // KVM will store its data at ES:RDI when it finishes the instruction: have it store what
            // is there then, so that only the client's emulation changes guest memory.
            pendingStringIn = new long[] {vcpu.segment(SegmentRegister.ES).base() + (vcpu.get(Register.RDI) & mask),
                io.size(), io.count(), step};
        } else {
            vcpu.set(Register.RSI, (vcpu.get(Register.RSI) - step) & mask | vcpu.get(Register.RSI) & ~mask);
            if (instruction.rep()) {
                vcpu.set(Register.RCX, (vcpu.get(Register.RCX) + 1) & mask | vcpu.get(Register.RCX) & ~mask);
            }
        }
        vcpu.forcePendingCompletion();
        vcpu.completionNextRip = -1;
    }

    /** A string IN KVM has yet to finish: {linear address of element 0, element size, count, step}; or null. */
    private long[] pendingStringIn;

    /** Fills KVM's string-IN data with the guest memory it will be stored over (see {@link #reportStringIo}). */
    private void prefillStringIn() {
        if (pendingStringIn == null) {
            return;
        }
        long size = pendingStringIn[1];
        long count = pendingStringIn[2];
        MemorySegment data = vcpu.portIoData(size * count);
        for (long i = 0; data != null && i < count; i++) {
            instructions.readLinear(pendingStringIn[0] + i * pendingStringIn[3], data.asSlice(i * size, size));
        }
        pendingStringIn = null;
    }

    /** Exit 48 (or 44 inside the APIC page), with the access bits of the EPT-violation qualification. */
    private void mmio(VmExit.Mmio mmio) {
        long gpa = mmio.address();
        long rip = vcpu.get(Register.RIP);
        if (mmio.isWrite()) {
            int length = instructions.memoryWriteBefore(rip, mmio);
            vcpu.presentRip(rip - length);
            rip -= length;
        } else {
            // KVM finishes the load at the next entry. If the client moves RIP past it (having
            // emulated it), KVM's finishing agrees and needs no extra round (see Vcpu).
            int length = instructions.lengthAt(rip);
            vcpu.completionNextRip = length > 0 ? rip + length : -1;
        }
        set(VMCS_GUEST_PHYSICAL_ADDRESS, gpa);
        if (apicAccessPage >= 0 && gpa - apicAccessPage >= 0 && gpa - apicAccessPage < 4096) {
            reportExit(VMX_REASON_APIC_ACCESS, (gpa - apicAccessPage) | (mmio.isWrite() ? 1L << 12 : 0), 0);
            return;
        }
        Protection protection = vcpu.vm().protectionAt(gpa);
        long qualification = (mmio.isWrite() ? 2 : 1) | 1 << 7 | 1 << 8;
        if (protection != null) {
            qualification |= (protection.read() ? 1 << 3 : 0) | (protection.write() ? 1 << 4 : 0)
                    | (protection.read() ? 1 << 5 : 0);   // mapped pages are always executable on KVM
        }
        reportExit(VMX_REASON_EPT_VIOLATION, qualification, 0);
    }

    /** Exit 12 with HLT exiting; without it, the vCPU halts here until a kick or the deadline. */
    private void halt(long deadline) {
        long controls = get(VMCS_CTRL_CPU_BASED);
        if ((controls & CPU_BASED_IRQ_WND) != 0 && run.get(JAVA_BYTE, RunStructure.READY_FOR_INTERRUPT) != 0) {
            // VT-x would have left at the open window, before the HLT: KVM noticed it only at the
            // HLT. HLT has no effect until it completes, so report the window at the HLT.
            vcpu.presentRip(vcpu.get(Register.RIP) - 1);
            reportExit(VMX_REASON_IRQ_WND, 0, 0);
        } else if ((controls & CPU_BASED_HLT) != 0) {
            vcpu.presentRip(vcpu.get(Register.RIP) - 1);   // KVM reports HLT (1 byte) after it
            reportExit(VMX_REASON_HLT, 0, 1);
        } else {
            activityState = 1;
            reportExit(vcpu.awaitInterrupt(deadline) ? VMX_REASON_IRQ : VMX_REASON_VMX_TIMER_EXPIRED, 0, 0);
        }
    }
}
