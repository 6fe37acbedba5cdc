package dev.jhv.hv;

import dev.jhv.Hypervisor;

/** {@code hv_tsc_clock}: the monotonic clock scaled to the host TSC's rate. */
final class TscClock {
    private TscClock() {}

    private static final class Rate {
        static final long KHZ = Hypervisor.tscFrequencyKhz();
    }

    static long now() {
        long nanos = System.nanoTime();
        // nanos * kHz / 10^6 without overflowing: whole milliseconds, then the rest.
        return nanos / 1_000_000 * Rate.KHZ + nanos % 1_000_000 * Rate.KHZ / 1_000_000;
    }
}
