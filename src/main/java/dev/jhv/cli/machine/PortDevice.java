package dev.jhv.cli.machine;

/** A device on the I/O port bus. */
interface PortDevice {
    /** A guest IN of {@code size} bytes (1, 2 or 4) from {@code port}. */
    long read(int port, int size);

    /** A guest OUT of {@code size} bytes to {@code port}. */
    void write(int port, int size, long value);
}
