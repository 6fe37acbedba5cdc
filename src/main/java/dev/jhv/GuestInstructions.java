package dev.jhv;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ConcurrentHashMap;

import dev.jhv.vmx.InstructionDecoder;
import dev.jhv.vmx.InstructionDecoder.Instruction;
import dev.jhv.vmx.InstructionDecoder.Mode;

/**
 * Reads and decodes guest instructions for the VMX view: through the guest's segmentation and
 * page tables, from the VM's memory map, with no system call.
 *
 * <p>KVM reports an OUT or an MMIO write after executing it; VT-x reports it at the instruction.
 * Finding the start means decoding backwards: every length from 1 to 15 is tried, and the
 * shortest one that decodes to exactly that length and to an instruction that could have made
 * the access wins. When none does, the exit is reported with RIP where KVM left it and an
 * instruction length of 0, which a client that adds the length to RIP still handles correctly.
 */
final class GuestInstructions {
    /** What an exit-30 qualification needs to know about the I/O instruction. */
    record PortInstruction(int length, boolean string, boolean rep, boolean immediate, int addressSizeCode,
                           int segmentPrefix) {
        static final PortInstruction UNKNOWN = new PortInstruction(0, false, false, false, 0, 0);
        private static final ConcurrentHashMap<PortInstruction, PortInstruction> CANONICAL =
                new ConcurrentHashMap<>();
        private static final PortInstruction[] SIMPLE = new PortInstruction[64];

        /**
         * The canonical instance: a port-I/O exit happens often and its description takes few
         * values, so the common non-string forms are shared instead of allocated per exit.
         */
        static PortInstruction of(int length, boolean string, boolean rep, boolean immediate, int addressSizeCode,
                                  int segmentPrefix) {
            if (!string && length < 16) {
                int index = length << 1 | (immediate ? 1 : 0);
                PortInstruction cached = SIMPLE[index];
                if (cached == null) {
                    cached = new PortInstruction(length, false, false, immediate, 0, 0);
                    SIMPLE[index] = cached;
                }
                return cached;
            }
            PortInstruction candidate = new PortInstruction(length, string, rep, immediate, addressSizeCode, segmentPrefix);
            return CANONICAL.computeIfAbsent(candidate, key -> key);
        }

        /** The address-size mask of the string registers. */
        long addressMask() {
            return addressSizeCode == 0 ? 0xffffL : addressSizeCode == 1 ? 0xffffffffL : -1L;
        }

        /** VT-x's instruction-information segment code of the source (OUTS; INS always uses ES). */
        int segmentCode() {
            return switch (segmentPrefix) {
                case 0x26 -> 0;
                case 0x2e -> 1;
                case 0x36 -> 2;
                case 0x64 -> 4;
                case 0x65 -> 5;
                default -> 3;
            };
        }
    }

    private static final int MAX_LENGTH = 15;
    private static final long CR0_PG = 1L << 31;
    private static final long CR4_PSE = 1L << 4;
    private static final long CR4_PAE = 1L << 5;
    private static final long EFER_LMA = 1L << 10;
    private static final long ADDRESS_MASK = 0x000ffffffffff000L;
    /** Registers in instruction-encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15). */
    private static final Register[] ENCODING_ORDER = {Register.RAX, Register.RCX, Register.RDX, Register.RBX,
        Register.RSP, Register.RBP, Register.RSI, Register.RDI, Register.R8, Register.R9, Register.R10, Register.R11,
        Register.R12, Register.R13, Register.R14, Register.R15};

    private final Vcpu vcpu;
    private final byte[] window = new byte[2 * MAX_LENGTH];

    GuestInstructions(Vcpu vcpu) {
        this.vcpu = vcpu;
    }

    Mode mode() {
        long cr0 = vcpu.get(Register.CR0);
        if ((cr0 & 1) == 0) {
            return Mode.REAL_16;
        }
        int csAr = vcpu.segmentAccessRights(SegmentRegister.CS);
        if ((vcpu.readMsr(Vcpu.MSR_EFER) & EFER_LMA) != 0 && (csAr & 1 << 13) != 0) {
            return Mode.LONG_64;
        }
        return (csAr & 1 << 14) != 0 ? Mode.PROTECTED_32 : Mode.PROTECTED_16;
    }

    /** The I/O instruction at {@code rip} (IN exits: KVM has not executed it yet). */
    PortInstruction portInstructionAt(long rip, VmExit.PortIo io) {
        Mode mode = mode();
        Instruction instruction = instructionAt(rip, mode);
        PortInstruction port = instruction == null ? null : matchPort(instruction, io, mode);
        return port == null ? PortInstruction.UNKNOWN : port;
    }

    /** The length of the instruction at {@code rip}, or 0 when it cannot be read or decoded. */
    int lengthAt(long rip) {
        Instruction instruction = instructionAt(rip, mode());
        return instruction == null ? 0 : instruction.length();
    }

    private Instruction instructionAt(long rip, Mode mode) {
        int fetched = fetchFrom(codeAddress(rip));
        return InstructionDecoder.decode(window, 0, fetched, mode);
    }

    /**
     * The instruction made of exactly the last {@code length} bytes that {@link #fetchBefore}
     * fetched, or null: one step of the backward search (see the class comment).
     */
    private Instruction endingAtFetchEnd(int length, Mode mode) {
        Instruction instruction = InstructionDecoder.decode(window, MAX_LENGTH - length, length, mode);
        return instruction != null && instruction.length() == length ? instruction : null;
    }

    /** The I/O instruction that ends at {@code rip} (OUT exits: KVM has executed it). */
    PortInstruction portInstructionBefore(long rip, VmExit.PortIo io) {
        Mode mode = mode();
        int fetched = fetchBefore(codeAddress(rip));
        for (int length = 1; length <= fetched; length++) {
            Instruction instruction = endingAtFetchEnd(length, mode);
            if (instruction != null) {
                PortInstruction port = matchPort(instruction, io, mode);
                if (port != null) {
                    return port;
                }
            }
        }
        return PortInstruction.UNKNOWN;
    }

    private PortInstruction matchPort(Instruction instruction, VmExit.PortIo io, Mode mode) {
        int opcode = instruction.opcode();
        if (instruction.map() != 1) {
            return null;
        }
        boolean immediate = opcode >= 0xe4 && opcode <= 0xe7;
        boolean viaDx = opcode >= 0xec && opcode <= 0xef;
        boolean string = opcode >= 0x6c && opcode <= 0x6f;
        if (!immediate && !viaDx && !string) {
            return null;
        }
        boolean in = string ? opcode <= 0x6d : (opcode & 2) == 0;
        int size = (opcode & 1) == 0 ? 1 : Math.min(instruction.operandSize(), 4);
        long port = immediate ? instruction.immediate() : vcpu.get(Register.RDX) & 0xffff;
        if (in != io.isIn() || size != io.size() || port != io.port()) {
            return null;
        }
        boolean rep = string && instruction.hasPrefix(InstructionDecoder.PREFIX_REP | InstructionDecoder.PREFIX_REPNE);
        int addressSizeCode = instruction.addressSize() == 2 ? 0 : instruction.addressSize() == 4 ? 1 : 2;
        return PortInstruction.of(instruction.length(), string, rep, immediate, addressSizeCode,
                instruction.segmentPrefix());
    }

    /**
     * An OUTS at {@code rip} that sent this exit's data: KVM leaves RIP on a REP OUTS until its last
     * element, with RSI already past the element sent. Null when the instruction at RIP is not that.
     */
    PortInstruction stringOutAt(long rip, VmExit.PortIo io) {
        if (!outsAt(codeAddress(rip))) {
            return null;
        }
        PortInstruction port = portInstructionAt(rip, io);
        if (!port.string()) {
            return null;
        }
        long direction = (vcpu.get(Register.RFLAGS) & 1L << 10) != 0 ? -1 : 1;
        long source = (vcpu.get(Register.RSI) - direction * io.size()) & port.addressMask();
        SegmentRegister segment = switch (port.segmentCode()) {
            case 0 -> SegmentRegister.ES;
            case 1 -> SegmentRegister.CS;
            case 2 -> SegmentRegister.SS;
            case 4 -> SegmentRegister.FS;
            case 5 -> SegmentRegister.GS;
            default -> SegmentRegister.DS;
        };
        long linear = vcpu.segmentBase(segment) + source;
        cachedPage = -1;
        long value = 0;
        for (int i = io.size() - 1; i >= 0; i--) {
            int b = readByte(linear + i);
            if (b < 0) {
                return null;
            }
            value = value << 8 | b;
        }
        return value == io.value() ? port : null;
    }

    /** Whether OUTS (6E/6F), after any prefixes, starts at {@code linear}: a check that decodes nothing. */
    private boolean outsAt(long linear) {
        cachedPage = -1;
        for (int i = 0; i < MAX_LENGTH; i++) {
            int b = readByte(linear + i);
            switch (b) {
                case 0x6e, 0x6f -> {
                    return true;
                }
                case 0xf2, 0xf3, 0x66, 0x67, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65 -> { }
                default -> {
                    return false;
                }
            }
        }
        return false;
    }

    /** Copies guest-linear memory into {@code into}; false if some byte is not readable. */
    boolean readLinear(long linear, MemorySegment into) {
        cachedPage = -1;
        for (long i = 0; i < into.byteSize(); i++) {
            int b = readByte(linear + i);
            if (b < 0) {
                return false;
            }
            into.set(ValueLayout.JAVA_BYTE, i, (byte) b);
        }
        return true;
    }

    /**
     * The length of the instruction that ends at {@code rip} and wrote guest-physical {@code gpa},
     * or 0 when it cannot be found.
     */
    int memoryWriteBefore(long rip, VmExit.Mmio write) {
        Mode mode = mode();
        int fetched = fetchBefore(codeAddress(rip));
        for (int length = 1; length <= fetched; length++) {
            Instruction instruction = endingAtFetchEnd(length, mode);
            if (instruction != null && writesMemoryAt(instruction, rip, write, mode)) {
                return length;
            }
        }
        return 0;
    }

    /**
     * Whether the instruction could have made this write: its memory operand translates to the
     * written address and, for the MOV forms, it has the right width and wrote that value.
     */
    private boolean writesMemoryAt(Instruction instruction, long nextRip, VmExit.Mmio write, Mode mode) {
        long gpa = write.address();
        if (instruction.map() == 1) {
            int opcode = instruction.opcode();
            if (opcode == 0x88 || opcode == 0x89 || opcode == 0xc6 || opcode == 0xc7) {
                int size = (opcode & 1) == 0 ? 1 : instruction.operandSize();
                if (size != write.size()) {
                    return false;
                }
                long mask = size == 8 ? -1L : (1L << 8 * size) - 1;
                long value = opcode >= 0xc6 ? instruction.immediate() : sourceRegister(instruction, size);
                if (((value ^ write.value()) & mask) != 0) {
                    return false;
                }
            }
            if (opcode == 0xa4 || opcode == 0xa5 || opcode == 0xaa || opcode == 0xab) {
                return true;   // MOVS/STOS: the registers have moved on, the address cannot be checked
            }
            if (opcode == 0xa2 || opcode == 0xa3) {
                return translatesTo(segmentBase(instruction, false) + instruction.immediate(), gpa);
            }
        }
        if (!instruction.memoryOperand()) {
            return false;
        }
        long offset = effectiveAddress(instruction, nextRip, mode);
        return translatesTo(segmentBase(instruction, stackBased(instruction)) + offset, gpa);
    }

    private boolean translatesTo(long linear, long gpa) {
        return physical(linear) == gpa;
    }

    /** The base of the segment the memory operand uses: the override, else DS (SS for stack-based forms). */
    private long segmentBase(Instruction instruction, boolean stack) {
        SegmentRegister segment = switch (instruction.segmentPrefix()) {
            case 0x26 -> SegmentRegister.ES;
            case 0x2e -> SegmentRegister.CS;
            case 0x36 -> SegmentRegister.SS;
            case 0x64 -> SegmentRegister.FS;
            case 0x65 -> SegmentRegister.GS;
            case 0x3e -> SegmentRegister.DS;
            default -> stack ? SegmentRegister.SS : SegmentRegister.DS;
        };
        return vcpu.segmentBase(segment);
    }

    private static boolean stackBased(Instruction instruction) {
        int modRm = instruction.modRm();
        int mod = modRm >> 6;
        int rm = modRm & 7;
        if (instruction.addressSize() == 2) {
            return rm == 2 || rm == 3 || rm == 6 && mod != 0;
        }
        int base = rm == 4 ? instruction.sib() & 7 : rm;
        return base == 4 || base == 5 && mod != 0;
    }

    /** The value of the ModRM reg operand as an operand of {@code size} bytes (AH-BH for bytes without REX). */
    private long sourceRegister(Instruction instruction, int size) {
        int reg = instruction.reg();
        if (size == 1 && instruction.rex() == 0 && reg >= 4 && reg < 8) {
            return vcpu.get(ENCODING_ORDER[reg - 4]) >>> 8;
        }
        return vcpu.get(ENCODING_ORDER[reg]);
    }

    /** The 16-bit base registers of ModRM forms 0-7: BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP, BX. */
    private static final Register[][] BASES_16 = {{Register.RBX, Register.RSI}, {Register.RBX, Register.RDI},
        {Register.RBP, Register.RSI}, {Register.RBP, Register.RDI}, {Register.RSI}, {Register.RDI}, {Register.RBP},
        {Register.RBX}};

    /** The offset (before segmentation) of the ModRM memory operand. */
    private long effectiveAddress(Instruction instruction, long nextRip, Mode mode) {
        int modRm = instruction.modRm();
        if (instruction.addressSize() == 2) {
            long address = instruction.displacement();
            if (!((modRm >> 6) == 0 && (modRm & 7) == 6)) {
                for (Register base : BASES_16[modRm & 7]) {
                    address += vcpu.get(base);
                }
            }
            return address & 0xffff;
        }
        int rex = instruction.rex();
        int mod = modRm >> 6;
        int rm = modRm & 7;
        long address = instruction.displacement();
        if (rm == 4) {
            int sib = instruction.sib();
            int base = (sib & 7) | (rex & 1) << 3;
            int index = (sib >> 3 & 7) | (rex & 2) << 2;
            if (index != 4) {
                address += vcpu.get(ENCODING_ORDER[index]) << (sib >> 6);
            }
            if (!((sib & 7) == 5 && mod == 0)) {
                address += vcpu.get(ENCODING_ORDER[base]);
            }
        } else if (rm == 5 && mod == 0) {
            if (mode == Mode.LONG_64) {
                address += nextRip;
            }
        } else {
            address += vcpu.get(ENCODING_ORDER[rm | (rex & 1) << 3]);
        }
        return instruction.addressSize() == 4 ? address & 0xffffffffL : address;
    }

    private long codeAddress(long rip) {
        return vcpu.segmentBase(SegmentRegister.CS) + rip;
    }

    /** Reads up to 15 bytes from {@code linear} on into the window's start; returns how many. */
    private int fetchFrom(long linear) {
        cachedPage = -1;
        for (int i = 0; i < MAX_LENGTH; i++) {
            int b = readByte(linear + i);
            if (b < 0) {
                return i;
            }
            window[i] = (byte) b;
        }
        return MAX_LENGTH;
    }

    /** Reads up to 15 bytes that end just before {@code end} into the window's first 15 bytes, right-aligned. */
    private int fetchBefore(long end) {
        cachedPage = -1;
        for (int i = 1; i <= MAX_LENGTH; i++) {
            int b = readByte(end - i);
            if (b < 0) {
                return i - 1;
            }
            window[MAX_LENGTH - i] = (byte) b;
        }
        return MAX_LENGTH;
    }

    /** The byte at a guest-linear address, or -1 when no readable memory is there. */
    private int readByte(long linear) {
        long page = linear & ~0xfffL;
        if (page != cachedPage) {
            long physical = physical(page);
            GuestPhysicalMap.Region region = physical < 0 ? null : vcpu.vm().memoryMap().find(physical);
            if (region == null || !region.protection().read()) {
                return -1;
            }
            cachedPage = page;
            cachedHost = region.host();
            cachedOffset = physical - region.gpa();
        }
        return cachedHost.get(ValueLayout.JAVA_BYTE, cachedOffset + (linear & 0xfff)) & 0xff;
    }

    private long cachedPage = -1;
    private MemorySegment cachedHost;
    private long cachedOffset;

    /** Guest-physical address of a guest-linear one under the current paging mode, or -1. */
    long physical(long linear) {
        long cr0 = vcpu.get(Register.CR0);
        if ((cr0 & CR0_PG) == 0) {
            return linear & 0xffffffffL;   // real mode too: the reset CS base is 0xffff0000
        }
        long cr3 = vcpu.get(Register.CR3);
        long cr4 = vcpu.get(Register.CR4);
        if ((vcpu.readMsr(Vcpu.MSR_EFER) & EFER_LMA) != 0) {
            long entry = cr3;
            for (int level = 3; level >= 0; level--) {
                entry = readEntry((entry & ADDRESS_MASK) + ((linear >>> (12 + 9 * level)) & 511) * 8, 8);
                if ((entry & 1) == 0) {
                    return -1;
                }
                if (level > 0 && level < 3 && (entry & 0x80) != 0) {
                    long pageMask = (1L << (12 + 9 * level)) - 1;
                    return (entry & ADDRESS_MASK & ~pageMask) | (linear & pageMask);
                }
            }
            return (entry & ADDRESS_MASK) | (linear & 0xfff);
        }
        linear &= 0xffffffffL;
        if ((cr4 & CR4_PAE) != 0) {
            long pdpte = readEntry((cr3 & 0xffffffe0L) + (linear >>> 30) * 8, 8);
            long pde = (pdpte & 1) == 0 ? 0 : readEntry((pdpte & ADDRESS_MASK) + ((linear >>> 21) & 511) * 8, 8);
            if ((pde & 1) == 0) {
                return -1;
            }
            if ((pde & 0x80) != 0) {
                return (pde & ADDRESS_MASK & ~0x1fffffL) | (linear & 0x1fffff);
            }
            long pte = readEntry((pde & ADDRESS_MASK) + ((linear >>> 12) & 511) * 8, 8);
            return (pte & 1) == 0 ? -1 : (pte & ADDRESS_MASK) | (linear & 0xfff);
        }
        long pde = readEntry((cr3 & 0xfffff000L) + (linear >>> 22) * 4, 4);
        if ((pde & 1) == 0) {
            return -1;
        }
        if ((pde & 0x80) != 0 && (cr4 & CR4_PSE) != 0) {
            return (pde & 0xffc00000L) | (linear & 0x3fffff);
        }
        long pte = readEntry((pde & 0xfffff000L) + ((linear >>> 12) & 1023) * 4, 4);
        return (pte & 1) == 0 ? -1 : (pte & 0xfffff000L) | (linear & 0xfff);
    }

    private long readEntry(long physical, int size) {
        GuestPhysicalMap.Region region = vcpu.vm().memoryMap().find(physical);
        if (region == null || !region.protection().read()) {
            return 0;
        }
        long offset = physical - region.gpa();
        return size == 8 ? region.host().get(ValueLayout.JAVA_LONG_UNALIGNED, offset)
                : Integer.toUnsignedLong(region.host().get(ValueLayout.JAVA_INT_UNALIGNED, offset));
    }
}
