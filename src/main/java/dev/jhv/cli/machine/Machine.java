package dev.jhv.cli.machine;

import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import dev.jhv.GuestMemory;
import dev.jhv.HvException;
import dev.jhv.Protection;
import dev.jhv.Register;
import dev.jhv.Segment;
import dev.jhv.SegmentRegister;
import dev.jhv.Vcpu;
import dev.jhv.VirtualMachine;
import dev.jhv.VmExit;

import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

/**
 * The PC that {@code jhv run} gives a kernel: RAM from 0, a 16550 UART on COM1, QEMU's debug-exit
 * port and fw_cfg, the legacy PIC and PIT ports, and a local-APIC page that reads as zeros. One
 * vCPU, run on the calling thread until the guest halts, exits through the debug port, faults
 * beyond repair, times out or is interrupted.
 */
public final class Machine implements AutoCloseable {
    /** How a guest can be started. */
    public enum Mode { REAL, PROTECTED, LONG }

    /** Exit statuses, all even so that none collides with a debug-exit status ((code << 1) | 1). */
    public static final int STATUS_HALTED = 0;
    public static final int STATUS_SHUTDOWN = 2;
    public static final int STATUS_ERROR = 4;
    public static final int STATUS_TIMEOUT = 124;
    public static final int STATUS_INTERRUPTED = 130;

    private static final int COM1 = 0x3f8;
    private static final int DEBUG_EXIT_PORT = 0xf4;
    private static final long PAGE_TABLES = 0x70000;
    private static final long BOOT_GDT = 0x7f000;

    private final VirtualMachine vm;
    private final GuestMemory ram;
    private final Uart16550 uart;
    private final FwCfg fwCfg;
    private final LegacyPorts legacy = new LegacyPorts();
    private final PrintStream trace;
    private Vcpu vcpu;
    private volatile boolean stopRequested;
    private volatile boolean timedOut;

    /**
     * @param trace where to log every exit, or null
     */
    public Machine(long ramBytes, String commandLine, OutputStream console, InputStream keyboard, PrintStream trace) {
        this.trace = trace;
        this.vm = VirtualMachine.create();
        try {
            this.ram = GuestMemory.allocate(ramBytes);
            vm.map(0, ram, Protection.ALL);
        } catch (RuntimeException e) {
            vm.close();
            throw e;
        }
        this.uart = new Uart16550(COM1, console);
        if (keyboard != null) {
            uart.connectInput(keyboard);
        }
        this.fwCfg = new FwCfg(ramBytes, 1, commandLine);
    }

    public MemorySegment memory() {
        return ram.segment();
    }

    /** Loads a Multiboot kernel and prepares the vCPU as a Multiboot boot loader leaves it. */
    public void bootMultiboot(byte[] kernel, String commandLine, List<byte[]> modules, List<String> moduleNames) {
        int header = Multiboot.findHeader(kernel);
        if (header < 0) {
            throw new IllegalArgumentException("no Multiboot header in the first 8 KiB: give --mode and --entry for a flat"
                    + " image");
        }
        Multiboot.Loaded loaded = Multiboot.load(kernel, header, ram.segment());
        List<Multiboot.Module> list = new java.util.ArrayList<>();
        for (int i = 0; i < modules.size(); i++) {
            list.add(new Multiboot.Module(modules.get(i), moduleNames.get(i)));
        }
        long info = Multiboot.writeInfo(ram.segment(), loaded.end(), commandLine, list);
        Vcpu cpu = vcpu();
        enter(cpu, Mode.PROTECTED, loaded.entry());
        cpu.set(Register.RAX, Multiboot.BOOTLOADER_MAGIC & 0xffffffffL);
        cpu.set(Register.RBX, info);
    }

    /** Loads a flat image at {@code load} and starts it at {@code entry} in {@code mode}. */
    public void bootFlat(byte[] image, long load, long entry, Mode mode) {
        if (load < 0 || load + image.length > ram.size()) {
            throw new IllegalArgumentException("the image does not fit in RAM at 0x" + Long.toHexString(load));
        }
        MemorySegment.copy(image, 0, ram.segment(), java.lang.foreign.ValueLayout.JAVA_BYTE, load, image.length);
        enter(vcpu(), mode, entry);
    }

    private Vcpu vcpu() {
        if (vcpu == null) {
            vcpu = vm.createVcpu();
        }
        return vcpu;
    }

    private void enter(Vcpu cpu, Mode mode, long entry) {
        switch (mode) {
            case REAL -> {
                long segment = entry >> 4 & 0xf000;
                cpu.setSegment(SegmentRegister.CS, Segment.real((int) segment, true));
                for (SegmentRegister data : DATA_SEGMENTS) {
                    cpu.setSegment(data, Segment.real(0, false));
                }
                cpu.set(Register.RIP, entry - (segment << 4));
                cpu.set(Register.RSP, 0x7000);
            }
            case PROTECTED -> {
                writeGdt();
                cpu.set(Register.CR0, 0x11);
                cpu.setSegment(SegmentRegister.CS, Segment.code32(0x08, 0));
                for (SegmentRegister data : DATA_SEGMENTS) {
                    cpu.setSegment(data, Segment.data32(0x10, 0));
                }
                cpu.set(Register.RIP, entry);
            }
            case LONG -> {
                writeGdt();
                writeIdentityPageTables();
                cpu.set(Register.CR3, PAGE_TABLES);
                cpu.set(Register.CR4, 0x620);
                cpu.set(Register.CR0, 0x80010033L);
                cpu.writeMsr(Vcpu.MSR_EFER, 0xd01);
                cpu.setSegment(SegmentRegister.CS, Segment.code64(0x18, 0));
                for (SegmentRegister data : DATA_SEGMENTS) {
                    cpu.setSegment(data, Segment.data32(0x10, 0));
                }
                cpu.set(Register.RIP, entry);
                cpu.set(Register.RSP, PAGE_TABLES);
            }
        }
        cpu.set(Register.GDT_BASE, BOOT_GDT);
        cpu.set(Register.GDT_LIMIT, 0x1f);
        cpu.setSegment(SegmentRegister.TR, new Segment(0, 0, 0x67, 0x8b));
        cpu.set(Register.RFLAGS, 0x2);
    }

    private static final SegmentRegister[] DATA_SEGMENTS = {SegmentRegister.DS, SegmentRegister.ES,
        SegmentRegister.FS, SegmentRegister.GS, SegmentRegister.SS};

    /** A flat GDT for the boot state: 0x08 32-bit code, 0x10 data, 0x18 64-bit code. */
    private void writeGdt() {
        MemorySegment gdt = ram.segment();
        gdt.set(JAVA_LONG_UNALIGNED, BOOT_GDT, 0);
        gdt.set(JAVA_LONG_UNALIGNED, BOOT_GDT + 8, 0x00cf9b000000ffffL);
        gdt.set(JAVA_LONG_UNALIGNED, BOOT_GDT + 16, 0x00cf93000000ffffL);
        gdt.set(JAVA_LONG_UNALIGNED, BOOT_GDT + 24, 0x00af9b000000ffffL);
    }

    /** Page tables at 0x70000 mapping the first 4 GiB 1:1 with 2 MiB pages. */
    private void writeIdentityPageTables() {
        MemorySegment memory = ram.segment();
        long pml4 = PAGE_TABLES;
        long pdpt = PAGE_TABLES + 0x1000;
        memory.asSlice(pml4, 0x6000).fill((byte) 0);
        memory.set(JAVA_LONG_UNALIGNED, pml4, pdpt | 3);
        for (int gib = 0; gib < 4; gib++) {
            long pd = PAGE_TABLES + 0x2000 + 0x1000L * gib;
            memory.set(JAVA_LONG_UNALIGNED, pdpt + 8L * gib, pd | 3);
            for (int i = 0; i < 512; i++) {
                memory.set(JAVA_LONG_UNALIGNED, pd + 8L * i, ((long) gib << 30 | (long) i << 21) | 0x83);
            }
        }
    }

    /**
     * Runs until the guest stops; returns the exit status (see the {@code STATUS_*} constants, or
     * {@code (code << 1) | 1} for a write of {@code code} to the debug-exit port).
     */
    public int run(double timeoutSeconds) {
        Vcpu cpu = vcpu();
        ScheduledExecutorService timer = null;
        if (timeoutSeconds > 0) {
            timer = Executors.newSingleThreadScheduledExecutor(task -> {
                Thread thread = new Thread(task, "jhv-timeout");
                thread.setDaemon(true);
                return thread;
            });
            timer.schedule(() -> {
                timedOut = true;
                cpu.interrupt();
            }, (long) (timeoutSeconds * 1e9), TimeUnit.NANOSECONDS);
        }
        try {
            for (;;) {
                VmExit exit;
                try {
                    exit = cpu.run();
                } catch (HvException e) {
                    report("jhv: the guest cannot go on: " + e.getMessage());
                    return STATUS_ERROR;
                }
                if (trace != null) {
                    trace.printf("exit %-60s rip 0x%x%n", exit, cpu.get(Register.RIP));
                }
                switch (exit) {
                    case VmExit.PortIo io -> {
                        Integer status = portIo(io);
                        if (status != null) {
                            return status;
                        }
                    }
                    case VmExit.Mmio mmio -> {
                        if (!mmio.isWrite()) {
                            mmio.complete(0);   // the local-APIC page, and anything unbacked, reads as zeros
                        }
                    }
                    case VmExit.MsrAccess msr -> {
                        if (!msr.isWrite()) {
                            msr.complete(0);
                        }
                    }
                    case VmExit.Halt halt -> {
                        return STATUS_HALTED;   // nothing here raises interrupts: a halted CPU stays halted
                    }
                    case VmExit.Interrupted interrupted -> {
                        if (timedOut) {
                            report("jhv: timed out");
                            return STATUS_TIMEOUT;
                        }
                        if (stopRequested) {
                            return STATUS_INTERRUPTED;
                        }
                    }
                    case VmExit.Shutdown shutdown -> {
                        report("jhv: the guest shut down (triple fault) at RIP 0x"
                                + Long.toHexString(cpu.get(Register.RIP)));
                        return STATUS_SHUTDOWN;
                    }
                    default -> {
                        report("jhv: the guest stopped: " + exit + " at RIP 0x" + Long.toHexString(cpu.get(Register.RIP)));
                        return STATUS_ERROR;
                    }
                }
            }
        } finally {
            if (timer != null) {
                timer.shutdownNow();
            }
        }
    }

    /** The status if the access ends the run (debug exit), else null. */
    private Integer portIo(VmExit.PortIo io) {
        int port = io.port();
        PortDevice device = deviceAt(port);
        if (io.isIn()) {
            for (int i = 0; i < io.count(); i++) {
                io.complete(i, device == null ? (1L << 8 * io.size()) - 1 : device.read(port, io.size()));
            }
            return null;
        }
        if (port == DEBUG_EXIT_PORT) {
            return (int) ((io.value() & 0xff) << 1 | 1);
        }
        if (device != null) {
            device.write(port, io.size(), io.value());
        }
        return null;
    }

    private PortDevice deviceAt(int port) {
        if (port >= COM1 && port < COM1 + 8) {
            return uart;
        }
        if (port == FwCfg.SELECTOR_PORT || port == FwCfg.DATA_PORT) {
            return fwCfg;
        }
        if (port >= 0x40 && port <= 0x43 || port == 0x61 || port == 0x20 || port == 0x21 || port == 0xa0
                || port == 0xa1) {
            return legacy;
        }
        return null;
    }

    /** Asks a running {@link #run} to stop (from any thread, e.g. on Ctrl-C). */
    public void stop() {
        stopRequested = true;
        if (vcpu != null) {
            vcpu.interrupt();
        }
    }

    private void report(String message) {
        System.err.println(message);
    }

    @Override
    public void close() {
        vm.close();
        ram.close();
    }
}
