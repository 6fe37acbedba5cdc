package dev.jhv.cli;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.Map;

import dev.jhv.GuestMemory;
import dev.jhv.Protection;
import dev.jhv.Register;
import dev.jhv.Segment;
import dev.jhv.SegmentRegister;
import dev.jhv.Vcpu;
import dev.jhv.VirtualMachine;
import dev.jhv.VmExit;
import dev.jhv.internal.linux.Libc;
import dev.jhv.vmx.InstructionDecoder;

import static dev.jhv.hv.Hv.*;

/**
 * The Java side of {@code jhv bench}: the same guest ({@code src/main/guest/bench.S}) and the same
 * work as the C reference, through the idiomatic API and through the {@code hv_*} facade.
 */
final class Benchmarks {
    static final long RAM_BYTES = 2 << 20;

    private final byte[] image;
    private final Map<String, Long> symbols;

    Benchmarks(byte[] image, Map<String, Long> symbols) {
        this.image = image;
        this.symbols = symbols;
    }

    private long symbol(String name) {
        return symbols.get(name);
    }

    /** Thread-allocated bytes, where the JVM can count them (HotSpot can). */
    private static long allocatedBytes() {
        return ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean bean
                ? bean.getCurrentThreadAllocatedBytes() : 0;
    }

    /** One measurement: nanoseconds, bytes allocated and ioctls made per operation. */
    record Sample(double nanos, double bytes, double ioctls) {
        Sample(double nanos) {
            this(nanos, 0, Double.NaN);
        }
    }

    private interface Body {
        void run(long count);
    }

    private static Sample measure(long warmup, long count, Body body) {
        body.run(warmup);
        long bytes = allocatedBytes();
        long ioctls = Libc.ioctlsOfThisThread();
        long start = System.nanoTime();
        body.run(count);
        long elapsed = System.nanoTime() - start;
        return new Sample((double) elapsed / count, (double) (allocatedBytes() - bytes) / count,
                (double) (Libc.ioctlsOfThisThread() - ioctls) / count);
    }

    // ---------------------------------------------------------------- the idiomatic API

    private VirtualMachine vm(GuestMemory ram) {
        VirtualMachine vm = VirtualMachine.create();
        MemorySegment.copy(image, 0, ram.segment(), ValueLayout.JAVA_BYTE, 0, image.length);
        vm.map(0, ram, Protection.ALL);
        return vm;
    }

    private void realMode(Vcpu vcpu) {
        vcpu.setSegment(SegmentRegister.CS, Segment.real(0, true));
        vcpu.set(Register.RIP, symbol("out_loop16"));
    }

    private void ring3(Vcpu vcpu, String entry) {
        vcpu.set(Register.CR3, symbol("PML4"));
        vcpu.set(Register.CR4, 0x620);
        vcpu.set(Register.CR0, 0x80010033L);
        vcpu.writeMsr(Vcpu.MSR_EFER, 0xd01);
        vcpu.set(Register.GDT_BASE, symbol("gdt"));
        vcpu.set(Register.GDT_LIMIT, symbol("gdt_end") - symbol("gdt") - 1);
        vcpu.setSegment(SegmentRegister.TR, new Segment(0x30, symbol("tss"),
                (int) (symbol("tss_end") - symbol("tss") - 1), 0x8b));
        vcpu.setSegment(SegmentRegister.CS, Segment.code64(0x2b, 3));
        for (SegmentRegister register : new SegmentRegister[] {SegmentRegister.SS, SegmentRegister.DS,
            SegmentRegister.ES, SegmentRegister.FS, SegmentRegister.GS}) {
            vcpu.setSegment(register, Segment.data32(0x23, 3));
        }
        vcpu.set(Register.RSP, symbol("USER_STACK_TOP"));
        vcpu.set(Register.RIP, symbol(entry));
    }

    Sample outExits(long count) {
        try (GuestMemory ram = GuestMemory.allocate(RAM_BYTES); VirtualMachine vm = vm(ram); Vcpu vcpu = vm.createVcpu()) {
            realMode(vcpu);
            return measure(count / 4, count, n -> {
                for (long i = 0; i < n; i++) {
                    if (!(vcpu.run() instanceof VmExit.PortIo)) {
                        throw new IllegalStateException("expected an OUT exit");
                    }
                }
            });
        }
    }

    Sample mmioExits(long count) {
        try (GuestMemory ram = GuestMemory.allocate(RAM_BYTES); VirtualMachine vm = vm(ram); Vcpu vcpu = vm.createVcpu()) {
            ring3(vcpu, "mmio_loop");
            return measure(count / 4, count, n -> {
                for (long i = 0; i < n; i++) {
                    if (!(vcpu.run() instanceof VmExit.Mmio)) {
                        throw new IllegalStateException("expected an MMIO exit");
                    }
                }
            });
        }
    }

    /** ns per register read after an exit (served from the shared run structure). */
    Sample registerReads(long count) {
        try (GuestMemory ram = GuestMemory.allocate(RAM_BYTES); VirtualMachine vm = vm(ram); Vcpu vcpu = vm.createVcpu()) {
            realMode(vcpu);
            vcpu.run();
            long[] sink = new long[1];
            return measure(count / 4, count, n -> {
                long sum = 0;
                for (long i = 0; i < n; i++) {
                    sum += vcpu.get(Register.RAX);
                }
                sink[0] = sum;
            });
        }
    }

    Sample creation(long count) {
        return measure(Math.max(1, count / 4), count, n -> {
            for (long i = 0; i < n; i++) {
                try (GuestMemory ram = GuestMemory.allocate(RAM_BYTES); VirtualMachine vm = vm(ram);
                     Vcpu vcpu = vm.createVcpu()) {
                    realMode(vcpu);
                    if (!(vcpu.run() instanceof VmExit.PortIo)) {
                        throw new IllegalStateException("expected an OUT exit");
                    }
                }
            }
        });
    }

    /** ns per iteration of a ring-3 dec/jnz loop of {@code count} iterations. */
    Sample compute(long count) {
        try (GuestMemory ram = GuestMemory.allocate(RAM_BYTES); VirtualMachine vm = vm(ram); Vcpu vcpu = vm.createVcpu()) {
            ring3(vcpu, "count_loop");
            vcpu.set(Register.RCX, 1);
            vcpu.run();
            vcpu.set(Register.RCX, count);
            long start = System.nanoTime();
            vcpu.run();
            return new Sample((double) (System.nanoTime() - start) / count);
        }
    }

    /**
     * Kick latency: a kicker thread calls interrupt() every millisecond while the vCPU runs ring-3
     * code; the median time from the call to run() returning, in ns (as the C reference measures).
     */
    Sample kicks(int count) {
        try (GuestMemory ram = GuestMemory.allocate(RAM_BYTES); VirtualMachine vm = vm(ram); Vcpu vcpu = vm.createVcpu()) {
            ring3(vcpu, "count_loop");
            vcpu.set(Register.RCX, Long.MAX_VALUE);
            long[] latencies = new long[count + 1];
            java.util.concurrent.atomic.AtomicLong sentAt = new java.util.concurrent.atomic.AtomicLong();
            java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
            Thread kicker = Thread.ofPlatform().name("jhv-bench-kicker").start(() -> {
                for (int i = 0; i < count; i++) {
                    java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
                    sentAt.set(System.nanoTime());
                    vcpu.interrupt();
                }
                // Kicks that meet the vCPU outside the guest merge into one exit: a last kick after
                // "done" ends the measuring loop whatever merged.
                done.set(true);
                vcpu.interrupt();
            });
            int measured = 0;
            while (!done.get()) {
                if (!(vcpu.run() instanceof VmExit.Interrupted)) {
                    throw new IllegalStateException("expected the kick");
                }
                latencies[measured++] = System.nanoTime() - sentAt.get();
            }
            try {
                kicker.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            latencies = java.util.Arrays.copyOf(latencies, measured);
            java.util.Arrays.sort(latencies);
            return new Sample(latencies[measured / 2]);
        }
    }

    /**
     * Cold start: a new JVM running {@code jhv run} on the real-mode hello16 of the bench guest, to
     * its exit; ns per process (the image and the command line come from the caller).
     */
    static Sample coldStart(java.util.List<String> command) {
        try {
            long start = System.nanoTime();
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            byte[] output = process.getInputStream().readAllBytes();
            if (process.waitFor() != 1 || !new String(output, java.nio.charset.StandardCharsets.US_ASCII).equals("hello\n")) {
                throw new IllegalStateException("the cold-start run failed: " + new String(output,
                        java.nio.charset.StandardCharsets.US_ASCII));
            }
            return new Sample(System.nanoTime() - start);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** map, protect (read-only), unprotect and unmap of 1 GiB, in ns each: {map, protect, unmap}. */
    double[] mapProtectUnmap(int count) {
        long size = 1L << 30;
        try (GuestMemory memory = GuestMemory.allocate(size); VirtualMachine vm = VirtualMachine.create()) {
            long map = 0;
            long protect = 0;
            long unmap = 0;
            for (int i = 0; i < count; i++) {
                long t0 = System.nanoTime();
                vm.map(0, memory, Protection.ALL);
                long t1 = System.nanoTime();
                vm.protect(0, size, Protection.READ_EXECUTE);
                long t2 = System.nanoTime();
                vm.unmap(0, size);
                long t3 = System.nanoTime();
                map += t1 - t0;
                protect += t2 - t1;
                unmap += t3 - t2;
            }
            return new double[] {(double) map / count, (double) protect / count, (double) unmap / count};
        }
    }

    /** ns per 4 KiB page of the guest's first write to it, over 64 MiB, with or without huge pages. */
    Sample firstTouch(boolean hugePages) {
        long touched = 64L << 20;
        long start = 16L << 20;
        try (GuestMemory ram = GuestMemory.allocate(start + touched,
                hugePages ? GuestMemory.Backing.ANONYMOUS_HUGE : GuestMemory.Backing.ANONYMOUS);
             VirtualMachine vm = vm(ram); Vcpu vcpu = vm.createVcpu()) {
            ring3(vcpu, "touch_loop");
            vcpu.set(Register.RDI, start);
            vcpu.set(Register.RSI, start + touched);
            long begin = System.nanoTime();
            if (!(vcpu.run() instanceof VmExit.Mmio)) {
                throw new IllegalStateException("expected the report");
            }
            return new Sample((double) (System.nanoTime() - begin) / (touched / 4096));
        }
    }

    // ---------------------------------------------------------------- the hv_* facade

    private interface FacadeBody<T> {
        T run(int vcpu, MemorySegment ram);
    }

    /** The facade's process VM with the bench image, and a vCPU on this thread, for {@code body}. */
    private <T> T withFacade(FacadeBody<T> body) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment ram = arena.allocate(RAM_BYTES, 4096);
            MemorySegment.copy(image, 0, ram, ValueLayout.JAVA_BYTE, 0, image.length);
            check(hv_vm_create(HV_VM_DEFAULT));
            try {
                check(hv_vm_map(ram, 0, RAM_BYTES, HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC));
                int[] id = new int[1];
                check(hv_vcpu_create(id, HV_VCPU_DEFAULT));
                try {
                    return body.run(id[0], ram);
                } finally {
                    check(hv_vcpu_destroy(id[0]));
                }
            } finally {
                check(hv_vm_destroy());
            }
        }
    }

    Sample facadeOutExits(long count) {
        return withFacade((vcpu, ram) -> {
            check(hv_vmx_vcpu_write_vmcs(vcpu, VMCS_GUEST_CS, 0));
            check(hv_vmx_vcpu_write_vmcs(vcpu, VMCS_GUEST_CS_BASE, 0));
            check(hv_vcpu_write_register(vcpu, HV_X86_RIP, symbol("out_loop16")));
            long[] value = new long[1];
            return measure(count / 4, count, n -> {
                for (long i = 0; i < n; i++) {
                    check(hv_vcpu_run_until(vcpu, HV_DEADLINE_FOREVER));
                    check(hv_vmx_vcpu_read_vmcs(vcpu, VMCS_RO_EXIT_REASON, value));
                    if (value[0] != VMX_REASON_IO) {
                        throw new IllegalStateException("expected exit 30, not " + value[0]);
                    }
                    check(hv_vcpu_read_register(vcpu, HV_X86_RIP, value));
                    long rip = value[0];
                    check(hv_vmx_vcpu_read_vmcs(vcpu, VMCS_RO_VMEXIT_INSTR_LEN, value));
                    check(hv_vcpu_write_register(vcpu, HV_X86_RIP, rip + value[0]));
                }
            });
        });
    }

    Sample facadeMmioExits(long count) {
        return withFacade((vcpu, ram) -> {
            ring3(dev.jhv.hv.Hv.vcpu(vcpu), "mmio_loop");
            check(hv_vmx_vcpu_write_vmcs(vcpu, VMCS_CTRL_VMENTRY_CONTROLS, VMENTRY_LOAD_EFER | VMENTRY_GUEST_IA32E));
            long[] value = new long[1];
            byte[] code = new byte[15];
            return measure(count / 4, count, n -> {
                for (long i = 0; i < n; i++) {
                    check(hv_vcpu_run_until(vcpu, HV_DEADLINE_FOREVER));
                    check(hv_vmx_vcpu_read_vmcs(vcpu, VMCS_RO_EXIT_REASON, value));
                    if (value[0] != VMX_REASON_EPT_VIOLATION) {
                        throw new IllegalStateException("expected exit 48, not " + value[0]);
                    }
                    check(hv_vcpu_read_register(vcpu, HV_X86_RIP, value));
                    long rip = value[0];
                    // The client decodes the store to emulate it, as QEMU and xhyve do.
                    MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, rip, code, 0, code.length);
                    InstructionDecoder.Instruction store = InstructionDecoder.decode(code, 0, code.length,
                            InstructionDecoder.Mode.LONG_64);
                    check(hv_vcpu_write_register(vcpu, HV_X86_RIP, rip + store.length()));
                }
            });
        });
    }

    Sample vmcsReads(long count) {
        return withFacade((vcpu, ram) -> {
            long[] value = new long[1];
            return measure(count / 4, count, n -> {
                for (long i = 0; i < n; i++) {
                    hv_vmx_vcpu_read_vmcs(vcpu, VMCS_RO_EXIT_REASON, value);
                }
            });
        });
    }

    private static void check(int result) {
        if (result != HV_SUCCESS) {
            throw new IllegalStateException("hv_return_t 0x" + Integer.toHexString(result));
        }
    }
}
