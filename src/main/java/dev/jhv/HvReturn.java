package dev.jhv;

/**
 * Apple's {@code hv_return_t} codes. Every {@link HvException} carries one, and the C-style
 * facade returns {@link #code()}.
 */
public enum HvReturn {
    SUCCESS(0x00000000),
    ERROR(0xfae94001),
    BUSY(0xfae94002),
    BAD_ARGUMENT(0xfae94003),
    NO_RESOURCES(0xfae94005),
    NO_DEVICE(0xfae94006),
    DENIED(0xfae94007),
    FAULT(0xfae94008),
    UNSUPPORTED(0xfae9400f);

    private final int code;

    HvReturn(int code) {
        this.code = code;
    }

    /** The numeric {@code hv_return_t} value, as a (negative) Java int. */
    public int code() {
        return code;
    }

    /** Apple's name of the code, e.g. {@code HV_BAD_ARGUMENT}. */
    public String appleName() {
        return "HV_" + name();
    }

    /** The constant with the given numeric value. */
    public static HvReturn of(int code) {
        for (HvReturn value : values()) {
            if (value.code == code) {
                return value;
            }
        }
        throw new IllegalArgumentException("not an hv_return_t: 0x" + Integer.toHexString(code));
    }
}
