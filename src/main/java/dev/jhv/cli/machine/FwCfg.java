package dev.jhv.cli.machine;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * QEMU's fw_cfg, traditional I/O interface: a 16-bit selector at 0x510, data read byte by byte at
 * 0x511. The items a small kernel reads: the signature, the interface id, RAM size, CPU counts,
 * the command line, and an empty file directory.
 */
final class FwCfg implements PortDevice {
    static final int SELECTOR_PORT = 0x510;
    static final int DATA_PORT = 0x511;

    static final int SIGNATURE = 0x0000;
    static final int ID = 0x0001;
    static final int RAM_SIZE = 0x0003;
    static final int NB_CPUS = 0x0005;
    static final int MAX_CPUS = 0x000f;
    static final int CMDLINE_SIZE = 0x0014;
    static final int CMDLINE_DATA = 0x0015;
    static final int FILE_DIR = 0x0019;

    private final Map<Integer, byte[]> items = new HashMap<>();
    private byte[] selected = new byte[0];
    private int offset;

    FwCfg(long ramBytes, int cpus, String commandLine) {
        items.put(SIGNATURE, "QEMU".getBytes(StandardCharsets.US_ASCII));
        items.put(ID, le(4, 1));                    // the traditional interface, no DMA
        items.put(RAM_SIZE, le(8, ramBytes));
        items.put(NB_CPUS, le(2, cpus));
        items.put(MAX_CPUS, le(2, cpus));
        byte[] line = (commandLine + "\0").getBytes(StandardCharsets.US_ASCII);
        items.put(CMDLINE_SIZE, le(4, line.length));
        items.put(CMDLINE_DATA, line);
        items.put(FILE_DIR, new byte[4]);          // big-endian count 0: no files
    }

    private static byte[] le(int size, long value) {
        ByteBuffer buffer = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value);
        byte[] bytes = new byte[size];
        System.arraycopy(buffer.array(), 0, bytes, 0, size);
        return bytes;
    }

    @Override
    public long read(int port, int size) {
        if (port != DATA_PORT) {
            return 0;
        }
        long value = 0;
        for (int i = 0; i < size; i++) {
            value |= (long) (offset < selected.length ? selected[offset++] & 0xff : 0) << 8 * i;
        }
        return value;
    }

    @Override
    public void write(int port, int size, long value) {
        if (port == SELECTOR_PORT) {
            selected = items.getOrDefault((int) value & 0xffff, new byte[0]);
            offset = 0;
        }
    }
}
