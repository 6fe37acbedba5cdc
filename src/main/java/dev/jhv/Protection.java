package dev.jhv;

/**
 * Guest access rights of a guest-physical range, Apple's {@code HV_MEMORY_READ/WRITE/EXEC}.
 *
 * <p>What KVM can enforce: a memory slot is either read-write or read-only, and every mapped page
 * is executable. So jhv accepts {@link #NONE} (no slot: every access exits), {@link #READ},
 * {@link #READ_EXECUTE} (read-only slot: writes exit), {@link #READ_WRITE} and {@link #ALL}
 * (read-write slot). Execute permission cannot be withheld, so {@code READ} behaves as
 * {@code READ_EXECUTE} and {@code READ_WRITE} as {@code ALL}. Write-only and execute-only cannot be
 * expressed and are rejected.
 */
public record Protection(boolean read, boolean write, boolean execute) {
    public static final int READ_BIT = 1 << 0;
    public static final int WRITE_BIT = 1 << 1;
    public static final int EXEC_BIT = 1 << 2;

    public static final Protection NONE = new Protection(false, false, false);
    public static final Protection READ = new Protection(true, false, false);
    public static final Protection READ_EXECUTE = new Protection(true, false, true);
    public static final Protection READ_WRITE = new Protection(true, true, false);
    public static final Protection ALL = new Protection(true, true, true);

    /** From Apple's flag bits; other bits are rejected. */
    public static Protection ofBits(long flags) {
        if ((flags & ~(long) (READ_BIT | WRITE_BIT | EXEC_BIT)) != 0) {
            throw HvException.badArgument("unknown memory flags 0x" + Long.toHexString(flags)
                    + " (only HV_MEMORY_READ, HV_MEMORY_WRITE and HV_MEMORY_EXEC are defined)");
        }
        return new Protection((flags & READ_BIT) != 0, (flags & WRITE_BIT) != 0, (flags & EXEC_BIT) != 0);
    }

    /** Apple's flag bits. */
    public int bits() {
        return (read ? READ_BIT : 0) | (write ? WRITE_BIT : 0) | (execute ? EXEC_BIT : 0);
    }

    /** Throws unless KVM can give these rights (see the class comment). */
    void requireExpressible() {
        if (!read && (write || execute)) {
            throw HvException.badArgument("memory protection " + this + " cannot be given on KVM: a guest page"
                    + " that is writable or executable is also readable; add READ, or use NONE");
        }
    }

    @Override
    public String toString() {
        return bits() == 0 ? "NONE" : (read ? "R" : "") + (write ? "W" : "") + (execute ? "X" : "");
    }
}
