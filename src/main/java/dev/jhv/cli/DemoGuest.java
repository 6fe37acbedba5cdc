package dev.jhv.cli;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import dev.jhv.GuestMemory;
import dev.jhv.Protection;
import dev.jhv.Vcpu;
import dev.jhv.VirtualMachine;
import dev.jhv.VmExit;

/**
 * Runs the built-in demo guest ({@code src/main/guest/demo.S}) as a tiny VMM would: a serial port,
 * a device with one MMIO register, an interrupt, and a count of every exit.
 */
final class DemoGuest {
    private static final long RAM_BYTES = 4 << 20;
    private static final long RESET_PAGE_GPA = 0xfffff000L;
    private static final int COM1 = 0x3f8;
    private static final long DEVICE_ID_GPA = 0x3fe00000L;
    private static final long REPORT_GPA = 0x3fe00008L;
    /** "JHV!" in little-endian bytes, as the guest reads it. */
    private static final long DEVICE_ID = 0x2156484aL;
    private static final int TIMER_VECTOR = 0x20;
    private static final long PRIMES_BELOW_2_000_000 = 148933;
    private static final long SIEVE_LIMIT = 2_000_000;

    private final PrintStream console;

    DemoGuest(PrintStream console) {
        this.console = console;
    }

    /** What the run showed. */
    record Report(Map<String, Integer> exits, List<Long> reports, long wallNanos, long guestNanos, boolean halted) {
        boolean succeeded() {
            return halted && reports.size() == 3 && reports.get(0) == PRIMES_BELOW_2_000_000
                    && reports.get(2) == DEVICE_ID;
        }

        /**
         * Instructions the sieve ran in ring 3, counted from its loops: 5 per inner iteration, 6 per
         * candidate, 5 more per prime, and the REP STOSB that clears the table as one per byte.
         */
        long ringThreeInstructions() {
            return reports.size() < 2 ? 0 : 5 * reports.get(1) + 6 * (SIEVE_LIMIT - 2) + 5 * reports.get(0) + SIEVE_LIMIT;
        }

        String describe() {
            StringBuilder text = new StringBuilder();
            text.append(halted ? "guest halted" : "guest did not halt").append('\n');
            if (!reports.isEmpty()) {
                text.append("primes below 2000000, counted in ring 3: ").append(reports.get(0))
                        .append(reports.get(0) == PRIMES_BELOW_2_000_000 ? " (correct)" : " (WRONG)").append('\n');
            }
            if (reports.size() > 1) {
                text.append(String.format("ring-3 instructions run natively (counted from the guest's loops): about %,d%n",
                        ringThreeInstructions()));
            }
            if (reports.size() > 2) {
                text.append("device id the guest read over MMIO: 0x").append(Long.toHexString(reports.get(2))).append('\n');
            }
            int total = exits.values().stream().mapToInt(Integer::intValue).sum();
            text.append("exits: ").append(total);
            exits.forEach((kind, count) -> text.append(", ").append(kind).append(' ').append(count));
            text.append('\n');
            text.append(String.format("time: %.1f ms wall, %.1f ms inside the guest (KVM_RUN), %.1f ms in jhv and the host%n",
                    wallNanos / 1e6, guestNanos / 1e6, (wallNanos - guestNanos) / 1e6));
            return text.toString();
        }
    }

    Report run() {
        byte[] image = GuestImage.builtIn("demo").image();
        Map<String, Integer> exits = new TreeMap<>();
        List<Long> reports = new ArrayList<>();
        long start = System.nanoTime();
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory ram = GuestMemory.allocate(RAM_BYTES)) {
            MemorySegment.copy(image, 0, ram.segment(), ValueLayout.JAVA_BYTE, 0, image.length);
            vm.map(0, ram, Protection.ALL);
            // The image's reset page appears again just below 4 GiB, where the reset vector points.
            vm.map(RESET_PAGE_GPA, ram.segment().asSlice(0x5000, 0x1000), Protection.READ_EXECUTE);
            try (Vcpu vcpu = vm.createVcpu()) {
                boolean interruptPending = false;
                boolean halted = false;
                while (!halted) {
                    if (interruptPending && vcpu.readyForInterrupt()) {
                        vcpu.injectInterrupt(TIMER_VECTOR);
                        interruptPending = false;
                        vcpu.requestInterruptWindow(false);
                    } else if (interruptPending) {
                        vcpu.requestInterruptWindow(true);
                    }
                    VmExit exit = vcpu.run();
                    exits.merge(kind(exit), 1, Integer::sum);
                    switch (exit) {
                        case VmExit.PortIo io when io.port() == COM1 && !io.isIn() -> console.print((char) io.value());
                        case VmExit.Mmio mmio when mmio.address() == DEVICE_ID_GPA && !mmio.isWrite() ->
                                mmio.complete(DEVICE_ID);
                        case VmExit.Mmio mmio when mmio.address() == REPORT_GPA && mmio.isWrite() -> {
                            reports.add(mmio.value());
                            interruptPending = reports.size() == 3;
                        }
                        case VmExit.InterruptWindow window -> { }
                        case VmExit.Halt halt -> halted = true;
                        default -> throw new IllegalStateException("the demo guest stopped unexpectedly: " + exit);
                    }
                }
                console.flush();
                return new Report(exits, reports, System.nanoTime() - start, vcpu.execTimeNanos(), true);
            }
        }
    }

    private static String kind(VmExit exit) {
        return switch (exit) {
            case VmExit.PortIo io -> "port I/O";
            case VmExit.Mmio mmio -> "MMIO";
            case VmExit.Halt halt -> "HLT";
            case VmExit.InterruptWindow window -> "interrupt window";
            default -> exit.getClass().getSimpleName();
        };
    }
}
