package dev.jhv.vmx;

/**
 * Decodes the structure of one x86 instruction: prefixes, opcode, ModRM/SIB, displacement and
 * immediate, and so its length. This is what a VMM needs to emulate an MMIO access after an EPT
 * violation (VT-x gives no instruction length for those), and what jhv uses to report exits at
 * the instruction. It does not know what instructions mean beyond that.
 *
 * <pre>{@code
 * InstructionDecoder.Instruction insn = InstructionDecoder.decode(bytes, 0, bytes.length, Mode.LONG_64);
 * if (insn != null && insn.opcode() == 0x89 && insn.hasModRm()) { ... }   // mov r/m, reg
 * }</pre>
 */
public final class InstructionDecoder {
    private InstructionDecoder() {}

    /** The code size the instruction runs in. */
    public enum Mode {
        REAL_16(2, 2), PROTECTED_16(2, 2), PROTECTED_32(4, 4), LONG_64(4, 8);

        final int operandSize;
        final int addressSize;

        Mode(int operandSize, int addressSize) {
            this.operandSize = operandSize;
            this.addressSize = addressSize;
        }
    }

    /**
     * A decoded instruction.
     *
     * @param length       total length in bytes, prefixes included
     * @param map          opcode map: 1 (one byte), 2 (0F), 3 (0F 38), 4 (0F 3A)
     * @param opcode       the opcode byte within its map
     * @param prefixes     bit set of the legacy prefixes seen (see the {@code PREFIX_*} constants)
     * @param rex          the REX byte, or 0
     * @param modRm        the ModRM byte, or -1 when the instruction has none
     * @param sib          the SIB byte, or -1
     * @param displacement the sign-extended displacement (0 when none)
     * @param immediate    the immediate, zero-extended from {@code immediateSize} bytes
     * @param immediateSize bytes of immediate (0, 1, 2, 4 or 8)
     * @param operandSize  effective operand size in bytes (2, 4 or 8)
     * @param addressSize  effective address size in bytes (2, 4 or 8)
     * @param segmentPrefix the last segment-override prefix byte (0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65), or 0
     */
    public record Instruction(int length, int map, int opcode, int prefixes, int rex, int modRm, int sib,
                              long displacement, long immediate, int immediateSize, int operandSize,
                              int addressSize, int segmentPrefix) {
        public boolean hasModRm() {
            return modRm >= 0;
        }

        /** True when the ModRM operand is memory (mod != 3). */
        public boolean memoryOperand() {
            return modRm >= 0 && (modRm >> 6) != 3;
        }

        /** The ModRM reg field, extended by REX.R. */
        public int reg() {
            return (modRm >> 3 & 7) | ((rex & 4) << 1);
        }

        public boolean hasPrefix(int prefix) {
            return (prefixes & prefix) != 0;
        }
    }

    public static final int PREFIX_LOCK = 1;
    public static final int PREFIX_REPNE = 1 << 1;
    public static final int PREFIX_REP = 1 << 2;
    public static final int PREFIX_SEGMENT = 1 << 3;
    public static final int PREFIX_OPERAND_SIZE = 1 << 4;
    public static final int PREFIX_ADDRESS_SIZE = 1 << 5;

    private static final int MAX_LENGTH = 15;

    /** One-byte opcodes that take a ModRM byte (bit set per opcode). */
    private static final long[] ONE_BYTE_MODRM = bits(
            0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x11, 0x12, 0x13, 0x18, 0x19, 0x1a, 0x1b,
            0x20, 0x21, 0x22, 0x23, 0x28, 0x29, 0x2a, 0x2b, 0x30, 0x31, 0x32, 0x33, 0x38, 0x39, 0x3a, 0x3b,
            0x62, 0x63, 0x69, 0x6b, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b,
            0x8c, 0x8d, 0x8e, 0x8f, 0xc0, 0xc1, 0xc4, 0xc5, 0xc6, 0xc7, 0xd0, 0xd1, 0xd2, 0xd3,
            0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xf6, 0xf7, 0xfe, 0xff);
    private static final long[] ONE_BYTE_IMM8 = bits(
            0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x6a, 0x6b, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76,
            0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x82, 0x83, 0xa8, 0xb0, 0xb1, 0xb2, 0xb3,
            0xb4, 0xb5, 0xb6, 0xb7, 0xc0, 0xc1, 0xc6, 0xcd, 0xd4, 0xd5, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6,
            0xe7, 0xeb);
    private static final long[] ONE_BYTE_IMMZ = bits(
            0x05, 0x0d, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x68, 0x69, 0x81, 0xa9, 0xc7, 0xe8, 0xe9);
    /** Two-byte (0F) opcodes without a ModRM byte. */
    private static final long[] TWO_BYTE_NO_MODRM = bits(
            0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77,
            0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
            0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf);
    private static final long[] TWO_BYTE_IMM8 = bits(0x0f, 0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4,
            0xc5, 0xc6);

    private static long[] bits(int... opcodes) {
        long[] set = new long[4];
        for (int opcode : opcodes) {
            set[opcode >> 6] |= 1L << (opcode & 63);
        }
        return set;
    }

    private static boolean in(long[] set, int opcode) {
        return (set[opcode >> 6] & 1L << (opcode & 63)) != 0;
    }

    /**
     * Decodes the instruction at {@code bytes[offset]}, looking at no more than {@code available}
     * bytes. Returns null when the bytes are not a complete instruction.
     */
    public static Instruction decode(byte[] bytes, int offset, int available, Mode mode) {
        Reader in = new Reader(bytes, offset, Math.min(available, MAX_LENGTH));
        int prefixes = 0;
        int segmentPrefix = 0;
        int rex = 0;
        int b;
        for (;;) {
            b = in.next();
            if (b < 0) {
                return null;
            }
            int prefix = switch (b) {
                case 0xf0 -> PREFIX_LOCK;
                case 0xf2 -> PREFIX_REPNE;
                case 0xf3 -> PREFIX_REP;
                case 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65 -> PREFIX_SEGMENT;
                case 0x66 -> PREFIX_OPERAND_SIZE;
                case 0x67 -> PREFIX_ADDRESS_SIZE;
                default -> 0;
            };
            if (prefix == 0) {
                break;
            }
            if (prefix == PREFIX_SEGMENT) {
                segmentPrefix = b;
            }
            prefixes |= prefix;
        }
        if (mode == Mode.LONG_64 && (b & 0xf0) == 0x40) {
            rex = b;
            b = in.next();
            if (b < 0) {
                return null;
            }
        }
        int operandSize = mode == Mode.LONG_64 && (rex & 8) != 0 ? 8
                : (prefixes & PREFIX_OPERAND_SIZE) != 0 ? (mode.operandSize == 2 ? 4 : 2) : mode.operandSize;
        int addressSize = (prefixes & PREFIX_ADDRESS_SIZE) == 0 ? mode.addressSize
                : mode == Mode.LONG_64 ? 4 : mode.addressSize == 2 ? 4 : 2;
        int immediateZ = operandSize == 2 ? 2 : 4;

        int map = 1;
        boolean modRm;
        int immediateSize;
        if (b == 0x0f) {
            b = in.next();
            if (b == 0x38 || b == 0x3a) {
                map = b == 0x38 ? 3 : 4;
                b = in.next();
                modRm = true;
                immediateSize = map == 4 ? 1 : 0;
            } else {
                map = 2;
                modRm = b >= 0 && !in(TWO_BYTE_NO_MODRM, b);
                immediateSize = b >= 0x80 && b <= 0x8f ? immediateZ : b >= 0 && in(TWO_BYTE_IMM8, b) ? 1 : 0;
            }
            if (b < 0) {
                return null;
            }
        } else if ((b == 0xc4 || b == 0xc5) && (mode == Mode.LONG_64 || in.peek() >= 0xc0)) {
            return decodeVex(in, b, prefixes, segmentPrefix, rex, mode, addressSize);
        } else {
            modRm = in(ONE_BYTE_MODRM, b);
            immediateSize = in(ONE_BYTE_IMM8, b) ? 1 : in(ONE_BYTE_IMMZ, b) ? immediateZ : 0;
            if (b >= 0xb8 && b <= 0xbf) {
                immediateSize = operandSize;
            } else if (b >= 0xa0 && b <= 0xa3) {
                immediateSize = addressSize;   // moffs: an absolute address
            } else if (b == 0xc2 || b == 0xca) {
                immediateSize = 2;
            } else if (b == 0xc8) {
                immediateSize = 3;
            } else if (b == 0x9a || b == 0xea) {
                if (mode == Mode.LONG_64) {
                    return null;
                }
                immediateSize = immediateZ + 2;
            }
        }
        return finish(in, map, b, prefixes, segmentPrefix, rex, modRm, immediateSize, operandSize, addressSize);
    }

    private static Instruction decodeVex(Reader in, int first, int prefixes, int segmentPrefix, int rex, Mode mode,
                                         int addressSize) {
        int map;
        int operandSize = mode.operandSize;
        if (first == 0xc5) {
            if (in.next() < 0) {
                return null;
            }
            map = 2;
        } else {
            int p1 = in.next();
            int p2 = in.next();
            if (p1 < 0 || p2 < 0) {
                return null;
            }
            map = switch (p1 & 0x1f) {
                case 1 -> 2;
                case 2 -> 3;
                case 3 -> 4;
                default -> -1;
            };
            if (map < 0) {
                return null;
            }
            if ((p2 & 0x80) != 0 && mode == Mode.LONG_64) {
                operandSize = 8;
            }
        }
        int opcode = in.next();
        if (opcode < 0) {
            return null;
        }
        int immediateSize = map == 4 || map == 2 && in(TWO_BYTE_IMM8, opcode) ? 1 : 0;
        return finish(in, map, opcode, prefixes, segmentPrefix, rex, true, immediateSize, operandSize, addressSize);
    }

    private static Instruction finish(Reader in, int map, int opcode, int prefixes, int segmentPrefix, int rex,
                                      boolean hasModRm, int immediateSize, int operandSize, int addressSize) {
        int modRm = -1;
        int sib = -1;
        long displacement = 0;
        if (hasModRm) {
            modRm = in.next();
            if (modRm < 0) {
                return null;
            }
            int mod = modRm >> 6;
            int rm = modRm & 7;
            int displacementSize = 0;
            if (mod != 3) {
                if (addressSize == 2) {
                    displacementSize = mod == 1 ? 1 : mod == 2 || (mod == 0 && rm == 6) ? 2 : 0;
                } else {
                    if (rm == 4) {
                        sib = in.next();
                        if (sib < 0) {
                            return null;
                        }
                    }
                    boolean noBase = mod == 0 && (rm == 5 || sib >= 0 && (sib & 7) == 5);
                    displacementSize = mod == 1 ? 1 : mod == 2 || noBase ? 4 : 0;
                }
            }
            if (map == 1 && (opcode == 0xf6 || opcode == 0xf7) && (modRm >> 3 & 6) == 0) {
                immediateSize = opcode == 0xf6 ? 1 : operandSize == 2 ? 2 : 4;   // TEST r/m, imm
            }
            displacement = in.signed(displacementSize);
            if (displacement == Long.MIN_VALUE) {
                return null;
            }
        }
        long immediate = in.unsigned(immediateSize);
        if (immediate == Long.MIN_VALUE) {
            return null;
        }
        return new Instruction(in.consumed(), map, opcode, prefixes, rex, modRm, sib, displacement, immediate,
                immediateSize, operandSize, addressSize, segmentPrefix);
    }

    private static final class Reader {
        private final byte[] bytes;
        private final int start;
        private final int limit;
        private int position;

        Reader(byte[] bytes, int start, int available) {
            this.bytes = bytes;
            this.start = start;
            this.limit = Math.min(bytes.length, start + Math.max(0, available));
            this.position = start;
        }

        int next() {
            return position < limit ? bytes[position++] & 0xff : -1;
        }

        int peek() {
            return position < limit ? bytes[position] & 0xff : -1;
        }

        int consumed() {
            return position - start;
        }

        /** Little-endian value of {@code size} bytes, or Long.MIN_VALUE past the end. */
        long unsigned(int size) {
            if (position + size > limit) {
                return Long.MIN_VALUE;
            }
            long value = 0;
            for (int i = size - 1; i >= 0; i--) {
                value = value << 8 | (bytes[position + i] & 0xffL);
            }
            position += size;
            return value;
        }

        long signed(int size) {
            long value = unsigned(size);
            if (value == Long.MIN_VALUE || size == 0 || size == 8) {
                return value;
            }
            int shift = 64 - 8 * size;
            return value << shift >> shift;
        }
    }
}
