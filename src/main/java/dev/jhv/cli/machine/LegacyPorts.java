package dev.jhv.cli.machine;

/**
 * The PC's legacy chips a kernel pokes at while starting: both 8259 PICs (accepted, ignored: no
 * interrupts are delivered through them), and the 8254 PIT, whose counters read back as a real
 * one's would count down at 1.193182 MHz.
 */
final class LegacyPorts implements PortDevice {
    private static final double PIT_HZ = 1_193_182.0;

    private final long start = System.nanoTime();
    private final boolean[] highByteNext = new boolean[3];
    private final int[] latched = new int[3];

    @Override
    public long read(int port, int size) {
        if (port >= 0x40 && port <= 0x42) {
            int channel = port - 0x40;
            if (!highByteNext[channel]) {
                latched[channel] = counter();
            }
            int value = highByteNext[channel] ? latched[channel] >> 8 : latched[channel] & 0xff;
            highByteNext[channel] = !highByteNext[channel];
            return value;
        }
        if (port == 0x61) {
            return (counter() & 0x100) != 0 ? 0x20 : 0;   // the PIT's channel 2 output toggles
        }
        return 0;   // PIC registers read as 0: no interrupt requested or in service
    }

    @Override
    public void write(int port, int size, long value) {
        if (port == 0x43) {
            highByteNext[0] = highByteNext[1] = highByteNext[2] = false;   // a new command restarts the byte order
        }
    }

    private int counter() {
        long ticks = (long) ((System.nanoTime() - start) / 1e9 * PIT_HZ);
        return 0xffff - (int) (ticks & 0xffff);
    }
}
