package dev.jhv;

import dev.jhv.internal.kvm.KvmStructs;

import static dev.jhv.internal.kvm.KvmStructs.KVM_REGS;
import static dev.jhv.internal.kvm.KvmStructs.KVM_RUN;
import static dev.jhv.internal.kvm.KvmStructs.KVM_SEGMENT;
import static dev.jhv.internal.kvm.KvmStructs.KVM_SREGS;
import static dev.jhv.internal.kvm.KvmStructs.offset;

/** Offsets into a vCPU's {@code kvm_run}, including the synchronised register copies in it. */
final class RunStructure {
    private RunStructure() {}

    static final long REQUEST_INTERRUPT_WINDOW = offset(KVM_RUN, "request_interrupt_window");
    static final long IMMEDIATE_EXIT = offset(KVM_RUN, "immediate_exit");
    static final long EXIT_REASON = offset(KVM_RUN, "exit_reason");
    static final long READY_FOR_INTERRUPT = offset(KVM_RUN, "ready_for_interrupt_injection");
    static final long IF_FLAG = offset(KVM_RUN, "if_flag");
    static final long CR8 = offset(KVM_RUN, "cr8");
    static final long VALID_REGS = offset(KVM_RUN, "kvm_valid_regs");
    static final long DIRTY_REGS = offset(KVM_RUN, "kvm_dirty_regs");
    static final long IO_DIRECTION = offset(KVM_RUN, "exit.io.direction");
    static final long IO_DATA_OFFSET = offset(KVM_RUN, "exit.io.data_offset");
    static final long MMIO_IS_WRITE = offset(KVM_RUN, "exit.mmio.is_write");

    /** {@code s.regs}: a {@code kvm_regs}. */
    static final long REGS = offset(KVM_RUN, "s.regs.regs");
    /** {@code s.sregs}: a {@code kvm_sregs}. */
    static final long SREGS = offset(KVM_RUN, "s.regs.sregs");
    /** {@code s.events}: a {@code kvm_vcpu_events}. */
    static final long EVENTS = offset(KVM_RUN, "s.regs.events");

    static final long REGS_BYTES = KVM_REGS.byteSize();
    static final long SREGS_BYTES = KVM_SREGS.byteSize();
    static final long EVENTS_BYTES = KvmStructs.KVM_VCPU_EVENTS.byteSize();

    static long regs(String field) {
        return REGS + offset(KVM_REGS, field);
    }

    static long sregs(String field) {
        return SREGS + offset(KVM_SREGS, field);
    }

    static long events(String field) {
        return EVENTS + offset(KvmStructs.KVM_VCPU_EVENTS, field);
    }

    static long segmentField(String field) {
        return offset(KVM_SEGMENT, field);
    }
}
