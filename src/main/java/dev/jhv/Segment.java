package dev.jhv;

/**
 * A segment register's full state, with the access rights in the VMX format Apple's API uses
 * (type in bits 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16).
 */
public record Segment(int selector, long base, int limit, int accessRights) {
    public static final int AR_UNUSABLE = 1 << 16;

    /** A flat 64-bit code segment (present, DPL {@code dpl}, execute/read, accessed, L, G). */
    public static Segment code64(int selector, int dpl) {
        return new Segment(selector, 0, 0xffffffff, 0xa09b | dpl << 5);
    }

    /** A flat 32-bit data segment (present, DPL {@code dpl}, read/write, accessed, D/B, G). */
    public static Segment data32(int selector, int dpl) {
        return new Segment(selector, 0, 0xffffffff, 0xc093 | dpl << 5);
    }

    /** A flat 32-bit code segment (present, DPL {@code dpl}, execute/read, accessed, D/B, G). */
    public static Segment code32(int selector, int dpl) {
        return new Segment(selector, 0, 0xffffffff, 0xc09b | dpl << 5);
    }

    /** A real-mode segment: base = selector * 16, 64 KiB limit, present data or code. */
    public static Segment real(int selector, boolean code) {
        return new Segment(selector, (long) selector << 4, 0xffff, code ? 0x9b : 0x93);
    }

    public int type() {
        return accessRights & 0xf;
    }

    public int dpl() {
        return accessRights >> 5 & 3;
    }

    public boolean present() {
        return (accessRights & 0x80) != 0;
    }

    public boolean unusable() {
        return (accessRights & AR_UNUSABLE) != 0;
    }
}
