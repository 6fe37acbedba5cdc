package dev.jhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

import dev.jhv.internal.kvm.KvmCaps;
import dev.jhv.internal.kvm.KvmExit;
import dev.jhv.internal.kvm.KvmStructs;
import dev.jhv.internal.kvm.KvmVcpu;
import dev.jhv.internal.linux.Errno;
import dev.jhv.internal.linux.KickSignal;
import dev.jhv.internal.linux.Libc;
import dev.jhv.internal.linux.SyscallException;

import static dev.jhv.RunStructure.DIRTY_REGS;
import static dev.jhv.RunStructure.EVENTS;
import static dev.jhv.RunStructure.EVENTS_BYTES;
import static dev.jhv.RunStructure.REGS;
import static dev.jhv.RunStructure.REGS_BYTES;
import static dev.jhv.RunStructure.SREGS;
import static dev.jhv.RunStructure.SREGS_BYTES;
import static dev.jhv.internal.kvm.KvmStructs.offset;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A virtual CPU, bound to the thread that created it.
 *
 * <p>Every method except {@link #interrupt()} must be called on the owning thread; other threads
 * get an {@link HvException} with {@link HvReturn#BAD_ARGUMENT} and change nothing.
 *
 * <p>Registers live in the run structure KVM shares with jhv: after an exit they are read there
 * without a system call, and writes are handed to KVM with the next {@link #run()}. Debug
 * registers, XCR0, MSRs and the FP state are read and written with one system call each.
 */
public final class Vcpu implements AutoCloseable {
    /** More elements than any string instruction can have left (RCX is capped by the guest's memory). */
    private static final int MAX_COMPLETION_ROUNDS = 1 << 24;
    private static final long ALL_SYNC = KvmCaps.SYNC_X86_REGS | KvmCaps.SYNC_X86_SREGS | KvmCaps.SYNC_X86_EVENTS;

    private static final long[] REGISTER_OFFSET = new long[Register.values().length];
    private static final int[] REGISTER_WIDTH = new int[Register.values().length];

    static {
        String[] gprs = {"rip", "rflags", "rax", "rcx", "rdx", "rbx", "rsi", "rdi", "rsp", "rbp",
            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
        for (int i = 0; i < gprs.length; i++) {
            REGISTER_OFFSET[i] = RunStructure.regs(gprs[i]);
            REGISTER_WIDTH[i] = 8;
        }
        String[] selectors = {"cs", "ss", "ds", "es", "fs", "gs"};
        for (int i = 0; i < selectors.length; i++) {
            at(Register.values()[Register.CS.ordinal() + i], RunStructure.sregs(selectors[i] + ".selector"), 2);
        }
        at(Register.IDT_BASE, RunStructure.sregs("idt.base"), 8);
        at(Register.IDT_LIMIT, RunStructure.sregs("idt.limit"), 2);
        at(Register.GDT_BASE, RunStructure.sregs("gdt.base"), 8);
        at(Register.GDT_LIMIT, RunStructure.sregs("gdt.limit"), 2);
        at(Register.LDTR, RunStructure.sregs("ldt.selector"), 2);
        at(Register.LDT_BASE, RunStructure.sregs("ldt.base"), 8);
        at(Register.LDT_LIMIT, RunStructure.sregs("ldt.limit"), 4);
        at(Register.TR, RunStructure.sregs("tr.selector"), 2);
        at(Register.TSS_BASE, RunStructure.sregs("tr.base"), 8);
        at(Register.TSS_LIMIT, RunStructure.sregs("tr.limit"), 4);
        at(Register.CR0, RunStructure.sregs("cr0"), 8);
        at(Register.CR2, RunStructure.sregs("cr2"), 8);
        at(Register.CR3, RunStructure.sregs("cr3"), 8);
        at(Register.CR4, RunStructure.sregs("cr4"), 8);
    }

    private static void at(Register register, long offset, int width) {
        REGISTER_OFFSET[register.ordinal()] = offset;
        REGISTER_WIDTH[register.ordinal()] = width;
    }

    private static final long[] SEGMENT_OFFSET = {
        RunStructure.sregs("cs"), RunStructure.sregs("ss"), RunStructure.sregs("ds"), RunStructure.sregs("es"),
        RunStructure.sregs("fs"), RunStructure.sregs("gs"), RunStructure.sregs("ldt"), RunStructure.sregs("tr")};
    private static final long SEG_BASE = RunStructure.segmentField("base");
    private static final long SEG_LIMIT = RunStructure.segmentField("limit");
    private static final long SEG_SELECTOR = RunStructure.segmentField("selector");
    private static final long SEG_TYPE = RunStructure.segmentField("type");
    private static final long SEG_EFER = RunStructure.sregs("efer");
    private static final long SEG_APIC_BASE = RunStructure.sregs("apic_base");

    private static final long DEBUGREGS_DB = offset(KvmStructs.KVM_DEBUGREGS, "db");
    private static final long DEBUGREGS_DR6 = offset(KvmStructs.KVM_DEBUGREGS, "dr6");
    private static final long DEBUGREGS_DR7 = offset(KvmStructs.KVM_DEBUGREGS, "dr7");
    private static final long XCRS_NR = offset(KvmStructs.KVM_XCRS, "nr_xcrs");
    private static final long XCRS_FIRST = offset(KvmStructs.KVM_XCRS, "xcrs");
    private static final long XCR_INDEX = offset(KvmStructs.KVM_XCR, "xcr");
    private static final long XCR_VALUE = offset(KvmStructs.KVM_XCR, "value");
    private static final long MSR_ENTRY = offset(KvmStructs.KVM_MSRS, "entries");
    private static final long MSR_INDEX = MSR_ENTRY + offset(KvmStructs.KVM_MSR_ENTRY, "index");
    private static final long MSR_DATA = MSR_ENTRY + offset(KvmStructs.KVM_MSR_ENTRY, "data");

    /** XSAVE image offsets: legacy region (FCW, MXCSR) and the XSAVE header's XSTATE_BV. */
    private static final long XSAVE_MXCSR = 24;
    private static final long XSAVE_XSTATE_BV = 512;
    /** Size of the FP state image read and written by {@link #readFpState}/{@link #writeFpState}. */
    public static final int FP_STATE_BYTES = (int) KvmStructs.KVM_XSAVE.byteSize();

    public static final int MSR_TSC = 0x10;
    public static final int MSR_EFER = 0xc0000080;
    public static final int MSR_APIC_BASE = 0x1b;
    public static final int MSR_FS_BASE = 0xc0000100;
    public static final int MSR_GS_BASE = 0xc0000101;

    private final VirtualMachine vm;
    private final KvmVcpu kvm;
    private final int id;
    private final Thread owner;
    private final int ownerTid;
    /** Owns the run-structure mapping and the scratch structures; shared so that VM close may free them. */
    private final Arena arena;
    private final MemorySegment run;
    private final MemorySegment msrs;
    private final MemorySegment debugRegs;
    private final MemorySegment xcrs;
    private final MemorySegment savedSync;
    /** Held by the owner while it is inside {@link #run()}; VM close takes it to wait for the run to end. */
    private final ReentrantLock runLock = new ReentrantLock();
    private final AtomicBoolean kickRequested = new AtomicBoolean();
    private volatile boolean closed;
    private volatile boolean closing;

    /** KVM_RUN must finish an IN, MMIO read or MSR access before the guest goes on. */
    private boolean completionPending;
    /** Set by the VMX view: the client emulates instructions itself (see settlePendingCompletion). */
    boolean vmxView;
    /** VMX view: RIP after the instruction whose completion is pending, or -1 when unknown. */
    long completionNextRip = -1;
    /** Bit i: field i of kvm_regs was written since the last exit. */
    private int writtenRegs;
    private boolean cpuidLocked;
    private long execNanos;
    private long idleNanos;

    private final VmExit.PortIo portIo;
    private final VmExit.Mmio mmio;
    private final VmExit.MsrAccess msrAccess;
    private final VmExit.Debug debug;
    private final VmExit.InternalError internalError;
    private final VmExit.EntryFailure entryFailure;
    private final VmExit.Other other;
    private final VmExit.Halt halt = new VmExit.Halt();
    private final VmExit.Shutdown shutdown = new VmExit.Shutdown();
    private final VmExit.Interrupted interrupted = new VmExit.Interrupted();
    private final VmExit.InterruptWindow interruptWindow = new VmExit.InterruptWindow();

    Vcpu(VirtualMachine vm, KvmVcpu kvm, int id, MemorySegment cpuid) {
        this.vm = vm;
        this.kvm = kvm;
        this.id = id;
        this.owner = Thread.currentThread();
        this.ownerTid = Libc.gettid();
        this.arena = Arena.ofShared();
        try {
            this.run = kvm.runStructure().reinterpret(arena, null);
            this.msrs = arena.allocate(MSR_ENTRY + KvmStructs.KVM_MSR_ENTRY.byteSize(), 8);
            this.debugRegs = arena.allocate(KvmStructs.KVM_DEBUGREGS);
            this.xcrs = arena.allocate(KvmStructs.KVM_XCRS);
            this.savedSync = arena.allocate(REGS_BYTES + SREGS_BYTES + EVENTS_BYTES, 8);
            this.portIo = new VmExit.PortIo(run);
            this.mmio = new VmExit.Mmio(run);
            this.msrAccess = new VmExit.MsrAccess(run);
            this.debug = new VmExit.Debug(run);
            this.internalError = new VmExit.InternalError(run);
            this.entryFailure = new VmExit.EntryFailure(run);
            this.other = new VmExit.Other(run);

            setCpuidTable(cpuid);
            // Start the register cache from KVM's reset state; from now on KVM refreshes it at every exit.
            kvm.getRegs(run.asSlice(REGS, REGS_BYTES));
            kvm.getSregs(run.asSlice(SREGS, SREGS_BYTES));
            kvm.getVcpuEvents(run.asSlice(EVENTS, EVENTS_BYTES));
            run.set(JAVA_LONG, RunStructure.VALID_REGS, ALL_SYNC);
            run.set(JAVA_LONG, DIRTY_REGS, 0);
            initialiseFpState();
            KickSignal.blockInCurrentThread();
            kvm.setSignalMask(KickSignal.runMaskOfCurrentThread());
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Makes the power-on FP state explicit: MXCSR 0x1F80 (all SIMD exceptions masked) with the x87
     * and SSE components marked present, so that a value written into an XMM register through
     * {@link #writeFpState} is used even before the guest has touched SSE.
     */
    private void initialiseFpState() {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment image = local.allocate(KvmStructs.KVM_XSAVE);
            kvm.getXsave(image);
            image.set(JAVA_INT, XSAVE_MXCSR, 0x1f80);
            image.set(JAVA_LONG, XSAVE_XSTATE_BV, image.get(JAVA_LONG, XSAVE_XSTATE_BV) | 0x3);
            kvm.setXsave(image);
        }
    }

    /** Apple-style id: 0 for the VM's first vCPU, then in creation order (lowest free id). */
    public int id() {
        return id;
    }

    public VirtualMachine vm() {
        return vm;
    }

    /** The thread this vCPU belongs to. */
    public Thread owner() {
        return owner;
    }

    // ---------------------------------------------------------------- running

    /**
     * Enters the guest and returns at the next exit the client has to handle. The returned object
     * is valid until the next call (see {@link VmExit}).
     *
     * @throws HvException {@link HvReturn#BAD_ARGUMENT} on a foreign thread or after close;
     *                     {@link HvReturn#FAULT} if caller memory mapped into the guest was freed;
     *                     {@link HvReturn#ERROR} if KVM refused to run the vCPU
     */
    public VmExit run() {
        checkOwner();
        runLock.lock();
        try {
            checkUsable();
            settlePendingCompletion();
            cpuidLocked = true;
            for (;;) {
                int result = enterGuest();
                if (result == -Errno.EINTR) {
                    KickSignal.consumePending();
                    if (closing) {
                        throw new HvException(HvReturn.BAD_ARGUMENT, "vCPU " + id + ": the VM was closed");
                    }
                    if (kickRequested.getAndSet(false)) {
                        completionPending = false;
                        return interrupted;
                    }
                    continue;   // another signal interrupted KVM_RUN: just go back in
                }
                if (result < 0) {
                    throw new HvException(HvReturn.ERROR, "vCPU " + id + ": KVM_RUN failed: " + Errno.describe(-result)
                            + (result == -Errno.EFAULT ? " (guest memory backing is gone or not writable)" : ""));
                }
                return decodeExit();
            }
        } finally {
            writtenRegs = 0;
            runLock.unlock();
        }
    }

    private int enterGuest() {
        MemorySegment[] keepAlive = vm.memoryMap().keepAlive();
        long start = System.nanoTime();
        int result;
        try {
            result = kvm.run(keepAlive, keepAlive.length);
        } catch (IllegalStateException closedArena) {
            // A caller's arena was closed while its memory was mapped: never let the guest near
            // that address range again, and tell the caller.
            var dead = vm.memoryMap().dropDeadCallerMemory();
            throw new HvException(HvReturn.FAULT, "guest memory " + describe(dead)
                    + " was freed by its owner while mapped; it has been unmapped", closedArena);
        } finally {
            execNanos += System.nanoTime() - start;
        }
        return result;
    }

    private static String describe(java.util.List<GuestPhysicalMap.Region> regions) {
        StringBuilder text = new StringBuilder();
        for (GuestPhysicalMap.Region region : regions) {
            text.append(text.isEmpty() ? "" : ", ").append(GuestPhysicalMap.range(region.gpa(), region.size()));
        }
        return text.toString();
    }

    private VmExit decodeExit() {
        int reason = run.get(JAVA_INT, RunStructure.EXIT_REASON);
        completionPending = false;
        return switch (reason) {
            case KvmExit.IO -> {
                completionPending = run.get(JAVA_BYTE, RunStructure.IO_DIRECTION) == KvmExit.IO_IN;
                yield portIo;
            }
            case KvmExit.MMIO -> {
                completionPending = run.get(JAVA_BYTE, RunStructure.MMIO_IS_WRITE) == 0;
                yield mmio;
            }
            case KvmExit.X86_RDMSR, KvmExit.X86_WRMSR -> {
                completionPending = true;
                yield msrAccess;
            }
            case KvmExit.HLT -> halt;
            case KvmExit.SHUTDOWN -> shutdown;
            case KvmExit.IRQ_WINDOW_OPEN -> interruptWindow;
            case KvmExit.DEBUG -> debug;
            case KvmExit.INTERNAL_ERROR -> internalError;
            case KvmExit.FAIL_ENTRY -> entryFailure;
            case KvmExit.INTR -> interrupted;
            default -> other;
        };
    }

    /**
     * KVM finishes an IN, MMIO read or MSR access only on the next KVM_RUN, and if registers were
     * written in between it ignores both the data and any new RIP. In the idiomatic view the
     * client answers with {@code complete(value)}; if it also wrote registers, the access is
     * finished first and the writes applied on top. In the VMX view the client emulates the
     * instruction itself and KVM's completion must leave no trace, unless the client's writes are
     * exactly what KVM would do anyway (RIP moved past the instruction, which makes KVM take the
     * written registers and drop its data).
     */
    private void settlePendingCompletion() {
        reconcilePresentedRip();
        if (!completionPending) {
            return;
        }
        long dirty = run.get(JAVA_LONG, DIRTY_REGS);
        if (vmxView) {
            boolean kvmAgrees = (dirty & KvmCaps.SYNC_X86_REGS) != 0 && completionNextRip >= 0
                    && run.get(JAVA_LONG, RunStructure.regs("rip")) == completionNextRip;
            if (!kvmAgrees) {
                finishPendingCompletion(true);
            }
        } else if (dirty != 0) {
            finishPendingCompletion(false);
        }
    }

    /**
     * Runs once with immediate_exit: KVM completes the pending instruction and returns without
     * entering the guest. Then the state the client sees is put back on top: every register
     * ({@code restoreAll}, the VMX view) or only those the client wrote.
     */
    private void finishPendingCompletion(boolean restoreAll) {
        long dirty = run.get(JAVA_LONG, DIRTY_REGS);
        MemorySegment.copy(run, REGS, savedSync, 0, REGS_BYTES + SREGS_BYTES + EVENTS_BYTES);
        run.set(JAVA_LONG, DIRTY_REGS, 0);
        run.set(JAVA_BYTE, RunStructure.IMMEDIATE_EXIT, (byte) 1);
        try {
            // A string instruction may go on to its next element and exit again: keep completing
            // until KVM reports that it stopped before entering the guest. The completion may
            // write guest memory, so caller memory is kept alive as for a real entry.
            MemorySegment[] keepAlive = vm.memoryMap().keepAlive();
            for (int result = kvm.run(keepAlive, keepAlive.length), rounds = 1; result != -Errno.EINTR;
                    result = kvm.run(keepAlive, keepAlive.length), rounds++) {
                if (result < 0) {
                    throw new HvException(HvReturn.ERROR, "vCPU " + id + ": completing the pending access failed: "
                            + Errno.describe(-result));
                }
                if (rounds > MAX_COMPLETION_ROUNDS) {
                    throw new HvException(HvReturn.ERROR, "vCPU " + id + ": KVM kept exiting while completing a"
                            + " string instruction");
                }
            }
        } finally {
            run.set(JAVA_BYTE, RunStructure.IMMEDIATE_EXIT, (byte) 0);
        }
        if (restoreAll) {
            MemorySegment.copy(savedSync, 0, run, REGS, REGS_BYTES + SREGS_BYTES + EVENTS_BYTES);
            dirty = ALL_SYNC;
        } else {
            for (int field = 0; field < 18; field++) {
                if ((writtenRegs & 1 << field) != 0) {
                    run.set(JAVA_LONG, REGS + 8L * field, savedSync.get(JAVA_LONG, 8L * field));
                }
            }
            if ((dirty & KvmCaps.SYNC_X86_SREGS) != 0) {
                MemorySegment.copy(savedSync, REGS_BYTES, run, SREGS, SREGS_BYTES);
            }
            if ((dirty & KvmCaps.SYNC_X86_EVENTS) != 0) {
                MemorySegment.copy(savedSync, REGS_BYTES + SREGS_BYTES, run, EVENTS, EVENTS_BYTES);
            }
        }
        run.set(JAVA_LONG, DIRTY_REGS, dirty);
        completionPending = false;
    }

    /**
     * Makes the vCPU leave the guest as soon as possible; {@link #run()} then returns
     * {@link VmExit.Interrupted}. May be called from any thread. A request made while the vCPU is
     * not in the guest is kept: the next {@code run()} returns at once. Never lost, never doubled.
     */
    public void interrupt() {
        if (closed) {
            return;
        }
        kickRequested.set(true);
        KickSignal.send(ownerTid);
        if (waitingHalted) {
            java.util.concurrent.locks.LockSupport.unpark(owner);
        }
    }

    /**
     * Waits outside the guest, as a halted CPU does, until {@link #interrupt()} or the deadline
     * (System.nanoTime clock; Long.MAX_VALUE for none). True when interrupted; the kick is consumed.
     */
    boolean awaitInterrupt(long deadline) {
        long start = System.nanoTime();
        waitingHalted = true;
        try {
            while (!kickRequested.get()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                java.util.concurrent.locks.LockSupport.parkNanos(this, Math.min(left, 100_000_000L));
            }
            kickRequested.set(false);
            KickSignal.consumePending();
            return true;
        } finally {
            waitingHalted = false;
            idleNanos += System.nanoTime() - start;
        }
    }

    /** True while the owner waits in {@link #awaitInterrupt}, where a kick must unpark it. */
    private volatile boolean waitingHalted;

    MemorySegment runStructure() {
        return run;
    }

    private static final long RIP = RunStructure.regs("rip");
    private static final int RIP_FIELD = (int) ((RIP - REGS) / 8);
    private static final long NO_RIP = -1;
    /** KVM's RIP while the client is shown another one (see {@link #presentRip}); NO_RIP if none. */
    private long kvmRip = NO_RIP;

    /**
     * Shows the client {@code rip} where KVM has moved on past the instruction (VT-x reports an OUT
     * at the instruction, KVM after it). Nothing is handed to KVM unless the client's RIP differs
     * from KVM's at the next entry: a client that moves RIP past the instruction, as they all do,
     * costs KVM no register load.
     */
    void presentRip(long rip) {
        if (kvmRip == NO_RIP) {
            kvmRip = run.get(JAVA_LONG, RIP);
        }
        run.set(JAVA_LONG, RIP, rip);
    }

    /** Before KVM sees the registers: hand over RIP only if it is not what KVM has already. */
    private void reconcilePresentedRip() {
        if (kvmRip == NO_RIP) {
            return;
        }
        long dirty = run.get(JAVA_LONG, DIRTY_REGS);
        if (run.get(JAVA_LONG, RIP) != kvmRip) {
            writtenRegs |= 1 << RIP_FIELD;
            markDirty(KvmCaps.SYNC_X86_REGS);
        } else if (writtenRegs == 1 << RIP_FIELD) {
            // Only RIP was written, and back to KVM's own value: nothing to load.
            run.set(JAVA_LONG, DIRTY_REGS, dirty & ~KvmCaps.SYNC_X86_REGS);
            writtenRegs = 0;
        }
        kvmRip = NO_RIP;
    }

    /** The VMX view has made KVM's state of the current instruction stale: finish it before entry. */
    void forcePendingCompletion() {
        completionPending = true;
    }

    /** The data area of the last port-I/O exit, if it holds {@code bytes}; else null. */
    MemorySegment portIoData(long bytes) {
        if (run.get(JAVA_INT, RunStructure.EXIT_REASON) != KvmExit.IO) {
            return null;
        }
        long offset = run.get(JAVA_LONG, RunStructure.IO_DATA_OFFSET);
        return offset + bytes <= run.byteSize() ? run.asSlice(offset, bytes) : null;
    }

    void markDirtyGroup(long group) {
        markDirty(group);
    }

    /** Cumulative time the vCPU spent inside KVM_RUN (entering, running and leaving the guest), in ns. */
    public long execTimeNanos() {
        checkOwner();
        return execNanos;
    }

    // ---------------------------------------------------------------- the VMX view

    private Vmx vmx;

    private Vmx vmx() {
        if (vmx == null) {
            vmx = new Vmx(this);
        }
        return vmx;
    }

    /**
     * Switches this vCPU to the VMX view of its exits (what {@link #runVmx} reports). Until the
     * client uses {@link #run()} again, it emulates I/O and MMIO instructions itself and moves RIP.
     */
    public void enableVmx() {
        checkOwnerAndUsable();
        vmx();
    }

    /**
     * Reads a VMCS field (Intel encoding, Apple's {@code VMCS_*} names in {@link dev.jhv.vmx.VmcsFields}).
     * Guest-state fields are the vCPU's real state, the same as the registers; exit-information
     * fields describe the last {@link #runVmx} exit.
     */
    public long readVmcs(int field) {
        checkOwnerAndUsable();
        return vmx().read(field);
    }

    /** Writes a VMCS field; control fields must respect {@link dev.jhv.vmx.VmxCapabilities}. */
    public void writeVmcs(int field, long value) {
        checkOwnerAndUsable();
        vmx().write(field, value);
    }

    /** {allowed_0, allowed_1} for writes of {@code field} (see {@code hv_vmx_vcpu_get_cap_write_vmcs}). */
    public long[] vmcsWriteCapability(int field) {
        checkOwnerAndUsable();
        return Vmx.writeCapability(field);
    }

    /**
     * Runs the guest with VT-x semantics until the next exit the client must handle, or until
     * {@code deadline} (System.nanoTime clock; {@code Long.MAX_VALUE} for none). The exit reason,
     * qualification, instruction length and the other exit-information fields are then in the VMCS.
     */
    public void runVmx(long deadline) {
        checkOwnerAndUsable();
        vmx().run(deadline);
    }

    /** Where this vCPU's APIC page is: guest accesses to it exit as APIC accesses (reason 44). */
    public void setApicAccessPage(long gpa) {
        checkOwnerAndUsable();
        vmx().setApicAccessPage(gpa);
    }

    /** Why the last VM entry failed (exit reason with bit 31 set), or "" if it did not. */
    public String vmxEntryFailure() {
        checkOwnerAndUsable();
        return vmx == null ? "" : vmx.entryFailure();
    }

    /** Cumulative time the vCPU waited halted outside the guest (VMX view, no HLT exiting), in ns. */
    public long idleTimeNanos() {
        checkOwner();
        return idleNanos;
    }

    // ---------------------------------------------------------------- registers

    /** Reads a register; see {@link Register} for the special ones. */
    public long get(Register register) {
        checkOwnerAndUsable();
        return switch (register) {
            case CR1 -> 0;
            case TPR -> run.get(JAVA_LONG, RunStructure.CR8) << 4;
            case LDT_AR -> accessRights(SEGMENT_OFFSET[SegmentRegister.LDTR.ordinal()]);
            case TSS_AR -> accessRights(SEGMENT_OFFSET[SegmentRegister.TR.ordinal()]);
            case DR0, DR1, DR2, DR3, DR4, DR5, DR6, DR7 -> readDebugRegister(register);
            case XCR0 -> readXcr0();
            default -> readField(register);
        };
    }

    /** Writes a register; the value reaches KVM with the next {@link #run()} (DRs and XCR0 at once). */
    public void set(Register register, long value) {
        checkOwnerAndUsable();
        switch (register) {
            case CR1 -> {
                if (value != 0) {
                    throw HvException.badArgument("CR1 is reserved and only takes 0");
                }
            }
            case TPR -> run.set(JAVA_LONG, RunStructure.CR8, value >>> 4 & 0xf);
            case LDT_AR -> setAccessRights(SEGMENT_OFFSET[SegmentRegister.LDTR.ordinal()], value);
            case TSS_AR -> setAccessRights(SEGMENT_OFFSET[SegmentRegister.TR.ordinal()], value);
            case DR0, DR1, DR2, DR3, DR4, DR5, DR6, DR7 -> writeDebugRegister(register, value);
            case XCR0 -> writeXcr0(value);
            default -> writeField(register, value);
        }
    }

    private long readField(Register register) {
        long offset = REGISTER_OFFSET[register.ordinal()];
        return switch (REGISTER_WIDTH[register.ordinal()]) {
            case 2 -> Short.toUnsignedLong(run.get(JAVA_SHORT, offset));
            case 4 -> Integer.toUnsignedLong(run.get(JAVA_INT, offset));
            default -> run.get(JAVA_LONG, offset);
        };
    }

    private void writeField(Register register, long value) {
        int index = register.ordinal();
        long offset = REGISTER_OFFSET[index];
        int width = REGISTER_WIDTH[index];
        if (width < 8 && value >>> (8 * width) != 0) {
            throw HvException.badArgument(register + " is " + 8 * width + " bits wide; 0x"
                    + Long.toHexString(value) + " does not fit");
        }
        switch (width) {
            case 2 -> run.set(JAVA_SHORT, offset, (short) value);
            case 4 -> run.set(JAVA_INT, offset, (int) value);
            default -> run.set(JAVA_LONG, offset, value);
        }
        if (offset < SREGS) {
            writtenRegs |= 1 << (int) ((offset - REGS) / 8);
            markDirty(KvmCaps.SYNC_X86_REGS);
        } else {
            markDirty(KvmCaps.SYNC_X86_SREGS);
        }
    }

    private void markDirty(long group) {
        run.set(JAVA_LONG, DIRTY_REGS, run.get(JAVA_LONG, DIRTY_REGS) | group);
    }

    /** The whole state of a segment register. */
    public Segment segment(SegmentRegister register) {
        checkOwnerAndUsable();
        long at = SEGMENT_OFFSET[register.ordinal()];
        return new Segment(Short.toUnsignedInt(run.get(JAVA_SHORT, at + SEG_SELECTOR)), run.get(JAVA_LONG, at + SEG_BASE),
                run.get(JAVA_INT, at + SEG_LIMIT), (int) accessRights(at));
    }

    /** A segment's base, without building a {@link Segment}: for paths that run at every exit. */
    long segmentBase(SegmentRegister register) {
        return run.get(JAVA_LONG, SEGMENT_OFFSET[register.ordinal()] + SEG_BASE);
    }

    /** A segment's VMX access rights, without building a {@link Segment}. */
    int segmentAccessRights(SegmentRegister register) {
        return (int) accessRights(SEGMENT_OFFSET[register.ordinal()]);
    }

    public void setSegment(SegmentRegister register, Segment segment) {
        checkOwnerAndUsable();
        if ((segment.selector() & ~0xffff) != 0) {
            throw HvException.badArgument("segment selector 0x" + Integer.toHexString(segment.selector())
                    + " is wider than 16 bits");
        }
        long at = SEGMENT_OFFSET[register.ordinal()];
        run.set(JAVA_SHORT, at + SEG_SELECTOR, (short) segment.selector());
        run.set(JAVA_LONG, at + SEG_BASE, segment.base());
        run.set(JAVA_INT, at + SEG_LIMIT, segment.limit());
        setAccessRights(at, segment.accessRights());
    }

    /** Reads a VMX-format access-rights word from a kvm_segment's split fields. */
    private long accessRights(long segment) {
        int type = run.get(JAVA_BYTE, segment + SEG_TYPE) & 0xf;
        int present = run.get(JAVA_BYTE, segment + SEG_TYPE + 1);
        int dpl = run.get(JAVA_BYTE, segment + SEG_TYPE + 2) & 3;
        int db = run.get(JAVA_BYTE, segment + SEG_TYPE + 3);
        int s = run.get(JAVA_BYTE, segment + SEG_TYPE + 4);
        int l = run.get(JAVA_BYTE, segment + SEG_TYPE + 5);
        int g = run.get(JAVA_BYTE, segment + SEG_TYPE + 6);
        int avl = run.get(JAVA_BYTE, segment + SEG_TYPE + 7);
        int unusable = run.get(JAVA_BYTE, segment + SEG_TYPE + 8);
        return type | s << 4 | dpl << 5 | present << 7 | avl << 12 | l << 13 | db << 14 | g << 15 | unusable << 16;
    }

    private void setAccessRights(long segment, long accessRights) {
        if ((accessRights & ~0x1f0ffL) != 0) {
            throw HvException.badArgument("access rights 0x" + Long.toHexString(accessRights)
                    + " set reserved bits (only 3:0, 7:4, 15:12 and 16 are defined)");
        }
        int ar = (int) accessRights;
        run.set(JAVA_BYTE, segment + SEG_TYPE, (byte) (ar & 0xf));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 1, (byte) (ar >> 7 & 1));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 2, (byte) (ar >> 5 & 3));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 3, (byte) (ar >> 14 & 1));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 4, (byte) (ar >> 4 & 1));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 5, (byte) (ar >> 13 & 1));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 6, (byte) (ar >> 15 & 1));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 7, (byte) (ar >> 12 & 1));
        run.set(JAVA_BYTE, segment + SEG_TYPE + 8, (byte) (ar >> 16 & 1));
        markDirty(KvmCaps.SYNC_X86_SREGS);
    }

    private long readDebugRegister(Register register) {
        kvm.getDebugRegs(debugRegs);
        return debugRegs.get(JAVA_LONG, debugRegisterOffset(register));
    }

    private void writeDebugRegister(Register register, long value) {
        kvm.getDebugRegs(debugRegs);
        debugRegs.set(JAVA_LONG, debugRegisterOffset(register), value);
        try {
            kvm.setDebugRegs(debugRegs);
        } catch (SyscallException e) {
            throw HvException.badArgument(register + " cannot be 0x" + Long.toHexString(value) + ": " + e.getMessage());
        }
    }

    private static long debugRegisterOffset(Register register) {
        return switch (register) {
            case DR0, DR1, DR2, DR3 -> DEBUGREGS_DB + 8L * (register.ordinal() - Register.DR0.ordinal());
            case DR4, DR6 -> DEBUGREGS_DR6;
            default -> DEBUGREGS_DR7;
        };
    }

    private long readXcr0() {
        kvm.getXcrs(xcrs);
        int count = xcrs.get(JAVA_INT, XCRS_NR);
        for (int i = 0; i < count; i++) {
            long at = XCRS_FIRST + i * KvmStructs.KVM_XCR.byteSize();
            if (xcrs.get(JAVA_INT, at + XCR_INDEX) == 0) {
                return xcrs.get(JAVA_LONG, at + XCR_VALUE);
            }
        }
        return 1;
    }

    private void writeXcr0(long value) {
        xcrs.fill((byte) 0);
        xcrs.set(JAVA_INT, XCRS_NR, 1);
        xcrs.set(JAVA_INT, XCRS_FIRST + XCR_INDEX, 0);
        xcrs.set(JAVA_LONG, XCRS_FIRST + XCR_VALUE, value);
        int result = kvm.setXcrsRaw(xcrs);
        if (result < 0) {
            throw HvException.badArgument("XCR0 cannot be 0x" + Long.toHexString(value)
                    + ": bit 0 must be set and every bit must be a feature the guest CPUID reports ("
                    + Errno.describe(-result) + ")");
        }
    }

    // ---------------------------------------------------------------- FP state, MSRs, CPUID

    /** Copies the FP/SIMD state, in the standard XSAVE format, into {@code buffer} (at least 4096 bytes). */
    public void readFpState(MemorySegment buffer) {
        checkOwnerAndUsable();
        checkFpBuffer(buffer);
        try (Arena local = Arena.ofConfined()) {
            MemorySegment image = local.allocate(KvmStructs.KVM_XSAVE);
            kvm.getXsave(image);
            MemorySegment.copy(image, 0, buffer, 0, FP_STATE_BYTES);
        }
    }

    /** Loads the FP/SIMD state from an XSAVE-format image of at least 4096 bytes. */
    public void writeFpState(MemorySegment buffer) {
        checkOwnerAndUsable();
        checkFpBuffer(buffer);
        try (Arena local = Arena.ofConfined()) {
            MemorySegment image = local.allocate(KvmStructs.KVM_XSAVE);
            MemorySegment.copy(buffer, 0, image, 0, FP_STATE_BYTES);
            kvm.setXsave(image);
        } catch (SyscallException e) {
            throw HvException.badArgument("KVM refused the FP state image: " + e.getMessage());
        }
    }

    private static void checkFpBuffer(MemorySegment buffer) {
        if (buffer.byteSize() < FP_STATE_BYTES) {
            throw HvException.badArgument("the FP state needs a buffer of " + FP_STATE_BYTES + " bytes, not "
                    + buffer.byteSize());
        }
    }

    /** Reads an MSR. EFER, APIC_BASE, FS_BASE and GS_BASE come from the same state as the registers. */
    public long readMsr(int index) {
        checkOwnerAndUsable();
        return switch (index) {
            case MSR_EFER -> run.get(JAVA_LONG, SEG_EFER);
            case MSR_APIC_BASE -> run.get(JAVA_LONG, SEG_APIC_BASE);
            case MSR_FS_BASE -> segment(SegmentRegister.FS).base();
            case MSR_GS_BASE -> segment(SegmentRegister.GS).base();
            default -> {
                prepareMsr(index, 0);
                if (kvm.getMsrs(msrs) != 1) {
                    throw HvException.badArgument("MSR 0x" + Integer.toHexString(index) + " is not supported by KVM");
                }
                yield msrs.get(JAVA_LONG, MSR_DATA);
            }
        };
    }

    /** Writes an MSR (see {@link #readMsr} for the ones kept with the registers). */
    public void writeMsr(int index, long value) {
        checkOwnerAndUsable();
        switch (index) {
            case MSR_EFER -> {
                run.set(JAVA_LONG, SEG_EFER, value);
                markDirty(KvmCaps.SYNC_X86_SREGS);
            }
            case MSR_APIC_BASE -> {
                run.set(JAVA_LONG, SEG_APIC_BASE, value);
                markDirty(KvmCaps.SYNC_X86_SREGS);
            }
            case MSR_FS_BASE, MSR_GS_BASE -> {
                long at = SEGMENT_OFFSET[(index == MSR_FS_BASE ? SegmentRegister.FS : SegmentRegister.GS).ordinal()];
                run.set(JAVA_LONG, at + SEG_BASE, value);
                markDirty(KvmCaps.SYNC_X86_SREGS);
            }
            default -> {
                prepareMsr(index, value);
                if (kvm.setMsrs(msrs) != 1) {
                    throw HvException.badArgument("MSR 0x" + Integer.toHexString(index) + " cannot be written with 0x"
                            + Long.toHexString(value) + " (unknown to KVM, read-only, or a reserved value)");
                }
            }
        }
    }

    /** Fills the one-entry {@code kvm_msrs} buffer. */
    private void prepareMsr(int index, long value) {
        msrs.set(JAVA_INT, 0, 1);
        msrs.set(JAVA_INT, MSR_INDEX, index);
        msrs.set(JAVA_LONG, MSR_DATA, value);
    }

    /**
     * Replaces what the guest's CPUID instruction returns. Possible only before the first
     * {@link #run()}; on some hosts KVM rewrites the feature leaves (1, 7, 0xD) to what the CPU
     * really has, since guest user code runs on it natively. See {@link CpuidTable}.
     */
    public void setCpuid(CpuidTable table) {
        checkOwnerAndUsable();
        if (cpuidLocked) {
            throw new HvException(HvReturn.BUSY, "vCPU " + id + " has run: KVM fixes its CPUID at the first run");
        }
        try (Arena local = Arena.ofConfined()) {
            setCpuidTable(table.toKvm(local));
        }
    }

    /** The CPUID table the vCPU uses, as KVM holds it. */
    public CpuidTable cpuid() {
        checkOwnerAndUsable();
        return CpuidTable.read(kvm);
    }

    private void setCpuidTable(MemorySegment kvmCpuid) {
        int result = kvm.setCpuid2Raw(kvmCpuid);
        if (result < 0) {
            throw HvException.badArgument("KVM refused the CPUID table: " + Errno.describe(-result));
        }
    }

    // ---------------------------------------------------------------- events, debug, TLB

    /** Asks for an {@link VmExit.InterruptWindow} exit as soon as the guest can take an interrupt. */
    public void requestInterruptWindow(boolean request) {
        checkOwnerAndUsable();
        run.set(JAVA_BYTE, RunStructure.REQUEST_INTERRUPT_WINDOW, (byte) (request ? 1 : 0));
    }

    /** Whether the guest could take an external interrupt now (IF set, no interrupt shadow). */
    public boolean readyForInterrupt() {
        checkOwnerAndUsable();
        return run.get(JAVA_BYTE, RunStructure.READY_FOR_INTERRUPT) != 0;
    }

    /**
     * Delivers external interrupt {@code vector} at the next entry. Only when the guest can take
     * one ({@link #readyForInterrupt()}, as of the last exit): KVM itself would deliver it even
     * with interrupts disabled, which no real CPU does. Otherwise ask for an
     * {@link VmExit.InterruptWindow} exit with {@link #requestInterruptWindow} and inject then.
     *
     * @throws HvException {@link HvReturn#BUSY} when the guest cannot take an interrupt now
     */
    public void injectInterrupt(int vector) {
        checkOwnerAndUsable();
        if (vector < 0 || vector > 255) {
            throw HvException.badArgument("interrupt vector " + vector + " is not 0-255");
        }
        if (run.get(JAVA_BYTE, RunStructure.READY_FOR_INTERRUPT) == 0) {
            throw new HvException(HvReturn.BUSY, "vCPU " + id + " cannot take an interrupt now (RFLAGS.IF clear or"
                    + " an interrupt shadow): request an interrupt window and inject at that exit");
        }
        kvm.interrupt(vector);
    }

    /** Delivers an NMI at the next entry. */
    public void injectNmi() {
        checkOwnerAndUsable();
        kvm.nmi();
    }

    /**
     * Guest debugging through KVM: single-step and up to four hardware breakpoints (linear
     * addresses); they produce {@link VmExit.Debug} exits. Passing {@code false} and no addresses
     * turns it off. On hosts that run guest user code natively these only work for kernel code.
     */
    public void setGuestDebug(boolean singleStep, long... breakpoints) {
        checkOwnerAndUsable();
        if (breakpoints.length > 4) {
            throw HvException.badArgument("x86 has 4 hardware breakpoints, not " + breakpoints.length);
        }
        int flags = (singleStep ? KvmCaps.GUESTDBG_SINGLESTEP : 0)
                | (breakpoints.length > 0 ? KvmCaps.GUESTDBG_USE_HW_BP : 0);
        applyGuestDebug(flags, breakpoints);
    }

    /** KVM_SET_GUEST_DEBUG with {@code KVM_GUESTDBG_*} flags (0: off) and hardware breakpoints. */
    void applyGuestDebug(int flags, long... breakpoints) {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment control = local.allocate(KvmStructs.KVM_GUEST_DEBUG);
            control.set(JAVA_INT, 0, flags == 0 ? 0 : flags | KvmCaps.GUESTDBG_ENABLE);
            long debugRegsAt = offset(KvmStructs.KVM_GUEST_DEBUG, "debugreg");
            long dr7 = 0;
            for (int i = 0; i < breakpoints.length; i++) {
                control.set(JAVA_LONG, debugRegsAt + 8L * i, breakpoints[i]);
                dr7 |= 1L << (2 * i);   // local enable, execute breakpoint, length 1
            }
            control.set(JAVA_LONG, debugRegsAt + 8L * 7, dr7);
            kvm.setGuestDebug(control);
        }
    }

    /**
     * Guest-physical address of a guest-linear one under the vCPU's current paging mode, or -1
     * when it is not mapped.
     */
    public long translate(long linear) {
        checkOwner();
        runLock.lock();
        try (Arena local = Arena.ofConfined()) {
            checkUsable();
            flushDirtyState();
            MemorySegment translation = local.allocate(KvmStructs.KVM_TRANSLATION);
            translation.set(JAVA_LONG, 0, linear);
            kvm.translate(translation);
            boolean valid = translation.get(JAVA_BYTE, offset(KvmStructs.KVM_TRANSLATION, "valid")) != 0;
            return valid ? translation.get(JAVA_LONG, offset(KvmStructs.KVM_TRANSLATION, "physical_address")) : -1;
        } finally {
            runLock.unlock();
        }
    }

    /**
     * Makes the guest see page-table changes made from the host: KVM drops its cached translations
     * (for the whole VM: KVM has no finer tool) and rebuilds them from guest memory when needed.
     */
    public void invalidateTlb() {
        checkOwnerAndUsable();
        vm.memoryMap().invalidateTranslations();
    }

    /**
     * Hands all register writes to KVM now instead of at the next entry. Not needed for
     * correctness; useful before reading state through other channels.
     */
    public void flush() {
        checkOwner();
        runLock.lock();
        try {
            checkUsable();
            flushDirtyState();
        } finally {
            runLock.unlock();
        }
    }

    private void flushDirtyState() {
        reconcilePresentedRip();
        long dirty = run.get(JAVA_LONG, DIRTY_REGS);
        if (dirty == 0) {
            return;
        }
        if (completionPending) {
            finishPendingCompletion(vmxView);
            dirty = run.get(JAVA_LONG, DIRTY_REGS);
        }
        if ((dirty & KvmCaps.SYNC_X86_REGS) != 0) {
            kvm.setRegs(run.asSlice(REGS, REGS_BYTES));
        }
        if ((dirty & KvmCaps.SYNC_X86_SREGS) != 0) {
            int result = kvm.setSregsRaw(run.asSlice(SREGS, SREGS_BYTES));
            if (result < 0) {
                throw HvException.badArgument("KVM refused the control-register or segment state: "
                        + Errno.describe(-result) + " (for example CR0.PG without CR0.PE, or long mode without CR4.PAE)");
            }
        }
        if ((dirty & KvmCaps.SYNC_X86_EVENTS) != 0) {
            kvm.setVcpuEvents(run.asSlice(EVENTS, EVENTS_BYTES));
        }
        run.set(JAVA_LONG, DIRTY_REGS, 0);
        writtenRegs = 0;
    }

    // ---------------------------------------------------------------- life cycle

    /** Destroys the vCPU. Owner thread only. */
    @Override
    public void close() {
        checkOwner();
        if (closed) {
            return;
        }
        vm.release(this);
    }

    public boolean isClosed() {
        return closed;
    }

    /**
     * Takes the run lock from any thread; a vCPU inside the guest is kicked out first (the kick
     * then shows as an {@link VmExit.Interrupted} exit, or, if {@code closing}, as an error).
     */
    private void stopAndLock() {
        if (!runLock.tryLock()) {
            kickRequested.set(true);
            KickSignal.send(ownerTid);
            runLock.lock();
        }
    }

    /**
     * Writes the guest TSC from any thread (for {@link VirtualMachine#syncTsc}); returns the value
     * read back right after, which shows whether the host honoured the write.
     */
    long writeTscFromAnyThread(long value) {
        stopAndLock();
        try {
            if (closed) {
                return value;
            }
            prepareMsr(MSR_TSC, value);
            kvm.setMsrs(msrs);
            kvm.getMsrs(msrs);
            return msrs.get(JAVA_LONG, MSR_DATA);
        } finally {
            runLock.unlock();
        }
    }

    /** The host's TSC frequency as KVM gives it to this vCPU, in kHz. */
    long tscKhz() {
        return kvm.getTscKhz();
    }

    /** Called by the VM, on any thread: stops a running {@code run()} and frees the vCPU. */
    void destroy() {
        closing = true;
        stopAndLock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            cpuidLocked = true;
            arena.close();
            kvm.close();
        } finally {
            runLock.unlock();
        }
    }

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw HvException.badArgument("vCPU " + id + " belongs to thread '" + owner.getName()
                    + "'; it was called from '" + Thread.currentThread().getName() + "'");
        }
    }

    private void checkUsable() {
        if (closed) {
            throw HvException.badArgument("vCPU " + id + " is destroyed");
        }
    }

    private void checkOwnerAndUsable() {
        checkOwner();
        checkUsable();
    }
}
