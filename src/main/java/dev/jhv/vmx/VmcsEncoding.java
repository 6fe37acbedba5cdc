package dev.jhv.vmx;

/** What a VMCS field encoding says about the field (Intel SDM: bits 14:13 width, 11:10 type). */
public final class VmcsEncoding {
    private VmcsEncoding() {}

    public enum Width { BITS_16, BITS_64, BITS_32, NATURAL }

    public enum Type { CONTROL, EXIT_INFORMATION, GUEST_STATE, HOST_STATE }

    /** Number of distinct (width, type, index) triples: the size of a dense per-field table. */
    public static final int TABLE_SIZE = 4 * 4 * 512;

    private static final Width[] WIDTHS = Width.values();
    private static final Type[] TYPES = Type.values();

    public static Width width(int field) {
        return WIDTHS[field >> 13 & 3];
    }

    public static Type type(int field) {
        return TYPES[field >> 10 & 3];
    }

    /** True for encodings Apple uses: full-field access (bit 0 clear), no bits above 14. */
    public static boolean wellFormed(int field) {
        return (field & ~0x7ffe) == 0 && (field & 0x1000) == 0;
    }

    /** A dense index for {@code field}, below {@link #TABLE_SIZE}. */
    public static int index(int field) {
        return (field >> 13 & 3) << 11 | (field >> 10 & 3) << 9 | (field >> 1 & 0x1ff);
    }

    /** The largest value a field of this width holds. */
    public static long mask(int field) {
        return switch (width(field)) {
            case BITS_16 -> 0xffffL;
            case BITS_32 -> 0xffffffffL;
            case BITS_64, NATURAL -> -1L;
        };
    }
}
