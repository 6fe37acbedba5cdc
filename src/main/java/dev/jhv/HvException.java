package dev.jhv;

/**
 * A failed hypervisor operation. Carries the {@code hv_return_t} code Apple's framework would
 * return, and a message that says what was wrong and, where it helps, how to fix it.
 */
public class HvException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final HvReturn code;

    public HvException(HvReturn code, String message) {
        super(message);
        this.code = code;
    }

    public HvException(HvReturn code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public HvReturn code() {
        return code;
    }

    static HvException badArgument(String message) {
        return new HvException(HvReturn.BAD_ARGUMENT, message);
    }
}
