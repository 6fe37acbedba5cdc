package dev.jhv;

import java.lang.foreign.MemorySegment;

import dev.jhv.internal.kvm.KvmExit;
import dev.jhv.internal.kvm.KvmStructs;

import static dev.jhv.internal.kvm.KvmStructs.KVM_RUN;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Why {@link Vcpu#run()} returned.
 *
 * <p>An exit is a view of the vCPU's shared run structure, not a copy: each vCPU reuses one object
 * per exit kind, so the run loop allocates nothing. Read it before the next {@code run()}; keep
 * the values, not the object.
 *
 * <pre>{@code
 * switch (vcpu.run()) {
 *     case VmExit.PortIo io when io.port() == 0x3f8 && !io.isIn() -> out.write((int) io.value());
 *     case VmExit.Mmio mmio when !mmio.isWrite() -> mmio.complete(device.read(mmio.address()));
 *     case VmExit.Halt halt -> running = false;
 *     default -> throw new IllegalStateException("unexpected " + exit);
 * }
 * }</pre>
 */
public sealed interface VmExit {

    /** KVM's exit reason, for diagnostics. */
    int kvmReason();

    /**
     * Port I/O: {@code IN}/{@code OUT} and their string forms. For OUT the data is in
     * {@link #value}; the instruction has completed. For IN, give the value with {@link #complete};
     * the vCPU loads it into the register on the next run. {@code count} is above 1 for
     * {@code rep ins}, which KVM batches (string OUT exits once per element).
     */
    final class PortIo implements VmExit {
        private static final long DIRECTION = KvmStructs.offset(KVM_RUN, "exit.io.direction");
        private static final long SIZE = KvmStructs.offset(KVM_RUN, "exit.io.size");
        private static final long PORT = KvmStructs.offset(KVM_RUN, "exit.io.port");
        private static final long COUNT = KvmStructs.offset(KVM_RUN, "exit.io.count");
        private static final long DATA_OFFSET = KvmStructs.offset(KVM_RUN, "exit.io.data_offset");

        private final MemorySegment run;

        PortIo(MemorySegment run) {
            this.run = run;
        }

        public int port() {
            return Short.toUnsignedInt(run.get(JAVA_SHORT, PORT));
        }

        /** Access size in bytes: 1, 2 or 4. */
        public int size() {
            return run.get(JAVA_BYTE, SIZE);
        }

        public boolean isIn() {
            return run.get(JAVA_BYTE, DIRECTION) == KvmExit.IO_IN;
        }

        /** Number of elements transferred by this exit (above 1 only for string input). */
        public int count() {
            return run.get(JAVA_INT, COUNT);
        }

        /** The first element: the data an OUT wrote. */
        public long value() {
            return value(0);
        }

        /** Element {@code index} of the data (string I/O). */
        public long value(int index) {
            return read(run, dataOffset() + (long) index * size(), size());
        }

        /** Answers an IN: {@code value} for every element. */
        public void complete(long value) {
            for (int i = 0; i < count(); i++) {
                complete(i, value);
            }
        }

        /** Answers element {@code index} of a string IN. */
        public void complete(int index, long value) {
            if (!isIn()) {
                throw HvException.badArgument("an OUT exit takes no value");
            }
            if (index < 0 || index >= count()) {
                throw HvException.badArgument("element " + index + " of " + count());
            }
            write(run, dataOffset() + (long) index * size(), size(), value);
        }

        /** The data area ({@code size * count} bytes) inside the run structure. */
        public MemorySegment data() {
            return run.asSlice(dataOffset(), (long) size() * count());
        }

        private long dataOffset() {
            return run.get(JAVA_LONG, DATA_OFFSET);
        }

        @Override
        public int kvmReason() {
            return KvmExit.IO;
        }

        @Override
        public String toString() {
            return (isIn() ? "IN" : "OUT") + " port 0x" + Integer.toHexString(port()) + " size " + size()
                    + (count() > 1 ? " count " + count() : "") + (isIn() ? "" : " value 0x" + Long.toHexString(value()));
        }
    }

    /**
     * An access to guest-physical memory that has no read-write mapping: unmapped, protected
     * {@link Protection#NONE}, or a write to a read-only range. For a write the data is in
     * {@link #value} and the instruction has completed; for a read, give the value with
     * {@link #complete}. Accesses wider than 8 bytes arrive as several exits.
     */
    final class Mmio implements VmExit {
        private static final long ADDRESS = KvmStructs.offset(KVM_RUN, "exit.mmio.phys_addr");
        private static final long DATA = KvmStructs.offset(KVM_RUN, "exit.mmio.data");
        private static final long LENGTH = KvmStructs.offset(KVM_RUN, "exit.mmio.len");
        private static final long IS_WRITE = KvmStructs.offset(KVM_RUN, "exit.mmio.is_write");

        private final MemorySegment run;

        Mmio(MemorySegment run) {
            this.run = run;
        }

        public long address() {
            return run.get(JAVA_LONG, ADDRESS);
        }

        /** Access size in bytes, 1 to 8. */
        public int size() {
            return run.get(JAVA_INT, LENGTH);
        }

        public boolean isWrite() {
            return run.get(JAVA_BYTE, IS_WRITE) != 0;
        }

        /** The data written. */
        public long value() {
            return read(run, DATA, size());
        }

        /** Answers a read. */
        public void complete(long value) {
            if (isWrite()) {
                throw HvException.badArgument("a write exit takes no value");
            }
            write(run, DATA, size(), value);
        }

        @Override
        public int kvmReason() {
            return KvmExit.MMIO;
        }

        @Override
        public String toString() {
            return "MMIO " + (isWrite() ? "write" : "read") + " 0x" + Long.toHexString(address()) + " size " + size()
                    + (isWrite() ? " value 0x" + Long.toHexString(value()) : "");
        }
    }

    /**
     * RDMSR or WRMSR of an MSR that KVM does not handle itself (unknown to it, or filtered).
     * Answer a read with {@link #complete}; refuse either with {@link #fail}, which gives the guest
     * #GP(0). An unanswered read returns 0.
     */
    final class MsrAccess implements VmExit {
        private static final long ERROR = KvmStructs.offset(KVM_RUN, "exit.msr.error");
        private static final long INDEX = KvmStructs.offset(KVM_RUN, "exit.msr.index");
        private static final long DATA = KvmStructs.offset(KVM_RUN, "exit.msr.data");

        private final MemorySegment run;

        MsrAccess(MemorySegment run) {
            this.run = run;
        }

        public int index() {
            return run.get(JAVA_INT, INDEX);
        }

        public boolean isWrite() {
            return run.get(JAVA_INT, RunStructure.EXIT_REASON) == KvmExit.X86_WRMSR;
        }

        /** The value written (EDX:EAX), or the answer given so far to a read. */
        public long value() {
            return run.get(JAVA_LONG, DATA);
        }

        public void complete(long value) {
            if (isWrite()) {
                throw HvException.badArgument("a WRMSR exit takes no value");
            }
            run.set(JAVA_LONG, DATA, value);
            run.set(JAVA_BYTE, ERROR, (byte) 0);
        }

        /** Refuses the access: the guest gets #GP(0) at the instruction. */
        public void fail() {
            run.set(JAVA_BYTE, ERROR, (byte) 1);
        }

        @Override
        public int kvmReason() {
            return run.get(JAVA_INT, RunStructure.EXIT_REASON);
        }

        @Override
        public String toString() {
            return (isWrite() ? "WRMSR 0x" + Integer.toHexString(index()) + " value 0x" + Long.toHexString(value())
                    : "RDMSR 0x" + Integer.toHexString(index()));
        }
    }

    /** HLT with nothing to wake the vCPU; RIP is past the instruction. */
    final class Halt implements VmExit {
        Halt() {}

        @Override
        public int kvmReason() {
            return KvmExit.HLT;
        }

        @Override
        public String toString() {
            return "HLT";
        }
    }

    /** Triple fault (or a state KVM cannot run, which it reports the same way): the vCPU is dead until reset. */
    final class Shutdown implements VmExit {
        Shutdown() {}

        @Override
        public int kvmReason() {
            return KvmExit.SHUTDOWN;
        }

        @Override
        public String toString() {
            return "shutdown (triple fault)";
        }
    }

    /** {@link Vcpu#interrupt} from some thread (or a deadline) ended the run; the guest state is intact. */
    final class Interrupted implements VmExit {
        Interrupted() {}

        @Override
        public int kvmReason() {
            return KvmExit.INTR;
        }

        @Override
        public String toString() {
            return "interrupted";
        }
    }

    /** The guest opened its interrupt window (after {@link Vcpu#requestInterruptWindow}). */
    final class InterruptWindow implements VmExit {
        InterruptWindow() {}

        @Override
        public int kvmReason() {
            return KvmExit.IRQ_WINDOW_OPEN;
        }

        @Override
        public String toString() {
            return "interrupt window open";
        }
    }

    /** A debug event requested with {@link Vcpu#setGuestDebug}: single step or breakpoint. */
    final class Debug implements VmExit {
        private static final long EXCEPTION = KvmStructs.offset(KVM_RUN, "exit.debug.exception");
        private static final long PC = KvmStructs.offset(KVM_RUN, "exit.debug.pc");
        private static final long DR6 = KvmStructs.offset(KVM_RUN, "exit.debug.dr6");
        private static final long DR7 = KvmStructs.offset(KVM_RUN, "exit.debug.dr7");

        private final MemorySegment run;

        Debug(MemorySegment run) {
            this.run = run;
        }

        /** 1 (#DB) or 3 (#BP). */
        public int exception() {
            return run.get(JAVA_INT, EXCEPTION);
        }

        /** Linear address of the instruction. */
        public long pc() {
            return run.get(JAVA_LONG, PC);
        }

        public long dr6() {
            return run.get(JAVA_LONG, DR6);
        }

        public long dr7() {
            return run.get(JAVA_LONG, DR7);
        }

        @Override
        public int kvmReason() {
            return KvmExit.DEBUG;
        }

        @Override
        public String toString() {
            return "debug exception " + exception() + " at 0x" + Long.toHexString(pc()) + " dr6 0x"
                    + Long.toHexString(dr6());
        }
    }

    /**
     * KVM could not go on: most often its instruction emulator met an instruction it does not
     * know (on hosts that emulate ring-0 code). {@link #describe} says what KVM reported.
     */
    final class InternalError implements VmExit {
        private static final long SUBERROR = KvmStructs.offset(KVM_RUN, "exit.internal.suberror");
        private static final long NDATA = KvmStructs.offset(KVM_RUN, "exit.internal.ndata");
        private static final long DATA = KvmStructs.offset(KVM_RUN, "exit.internal.data");
        private static final int MAX_DATA = 16;

        private final MemorySegment run;

        InternalError(MemorySegment run) {
            this.run = run;
        }

        /** {@code KVM_INTERNAL_ERROR_*}: 1 emulation failure, 2 exception while delivering one, 3 event delivery. */
        public int suberror() {
            return run.get(JAVA_INT, SUBERROR);
        }

        public int dataCount() {
            return Math.min(run.get(JAVA_INT, NDATA), MAX_DATA);
        }

        public long data(int index) {
            if (index < 0 || index >= dataCount()) {
                throw new IndexOutOfBoundsException(index);
            }
            return run.get(JAVA_LONG, DATA + 8L * index);
        }

        /**
         * The bytes of the instruction KVM failed to emulate, when it reported them (emulation
         * failures carry a flags word, then a length byte and up to 15 bytes).
         */
        public byte[] instructionBytes() {
            if (suberror() != KvmExit.INTERNAL_ERROR_EMULATION || dataCount() < 3 || (data(0) & 1) == 0) {
                return new byte[0];
            }
            int length = Math.min(run.get(JAVA_BYTE, DATA + 8) & 0xff, 15);
            byte[] bytes = new byte[length];
            MemorySegment.copy(run, JAVA_BYTE, DATA + 9, bytes, 0, length);
            return bytes;
        }

        public String describe() {
            StringBuilder text = new StringBuilder(switch (suberror()) {
                case KvmExit.INTERNAL_ERROR_EMULATION -> "KVM could not emulate an instruction";
                case KvmExit.INTERNAL_ERROR_SIMUL_EX -> "exception while delivering an exception";
                case KvmExit.INTERNAL_ERROR_DELIVERY_EV -> "event delivery failed";
                default -> "internal error " + suberror();
            });
            byte[] bytes = instructionBytes();
            if (bytes.length > 0) {
                text.append(", instruction bytes");
                for (byte b : bytes) {
                    text.append(String.format(" %02x", b));
                }
            }
            return text.toString();
        }

        @Override
        public int kvmReason() {
            return KvmExit.INTERNAL_ERROR;
        }

        @Override
        public String toString() {
            return describe();
        }
    }

    /** The hardware refused to enter the guest; {@link #hardwareReason} is the VMX/SVM code. */
    final class EntryFailure implements VmExit {
        private static final long REASON = KvmStructs.offset(KVM_RUN, "exit.fail_entry.hardware_entry_failure_reason");
        private static final long CPU = KvmStructs.offset(KVM_RUN, "exit.fail_entry.cpu");

        private final MemorySegment run;

        EntryFailure(MemorySegment run) {
            this.run = run;
        }

        public long hardwareReason() {
            return run.get(JAVA_LONG, REASON);
        }

        public int cpu() {
            return run.get(JAVA_INT, CPU);
        }

        @Override
        public int kvmReason() {
            return KvmExit.FAIL_ENTRY;
        }

        @Override
        public String toString() {
            return "entry failure, hardware reason 0x" + Long.toHexString(hardwareReason());
        }
    }

    /** Any other KVM exit (exception, hypercall, system event…), by its KVM reason. */
    final class Other implements VmExit {
        private final MemorySegment run;

        Other(MemorySegment run) {
            this.run = run;
        }

        @Override
        public int kvmReason() {
            return run.get(JAVA_INT, RunStructure.EXIT_REASON);
        }

        @Override
        public String toString() {
            return "KVM exit " + KvmExit.name(kvmReason());
        }
    }

    private static long read(MemorySegment run, long offset, int size) {
        return switch (size) {
            case 1 -> run.get(JAVA_BYTE, offset) & 0xffL;
            case 2 -> run.get(JAVA_SHORT.withByteAlignment(1), offset) & 0xffffL;
            case 4 -> run.get(JAVA_INT.withByteAlignment(1), offset) & 0xffffffffL;
            case 8 -> run.get(JAVA_LONG.withByteAlignment(1), offset);
            default -> {
                long value = 0;
                for (int i = size - 1; i >= 0; i--) {
                    value = value << 8 | (run.get(JAVA_BYTE, offset + i) & 0xffL);
                }
                yield value;
            }
        };
    }

    private static void write(MemorySegment run, long offset, int size, long value) {
        for (int i = 0; i < size; i++) {
            run.set(JAVA_BYTE, offset + i, (byte) (value >>> 8 * i));
        }
    }
}
