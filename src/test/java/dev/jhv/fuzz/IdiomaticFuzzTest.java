package dev.jhv.fuzz;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import dev.jhv.GuestMemory;
import dev.jhv.HvException;
import dev.jhv.Protection;
import dev.jhv.Register;
import dev.jhv.RequiresKvm;
import dev.jhv.Segment;
import dev.jhv.SegmentRegister;
import dev.jhv.Vcpu;
import dev.jhv.VirtualMachine;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Random sequences of calls on the idiomatic API, with random arguments and a guest running random
 * bytes: every failure is an {@link HvException} with a code and a message, nothing else escapes,
 * and closing always works.
 */
@RequiresKvm
class IdiomaticFuzzTest {
    private static final long RAM = 1 << 20;
    private static final int SEQUENCES = Integer.getInteger("jhv.fuzz.sequences", 200);
    private static final int CALLS = 60;

    @Test
    void failuresAreHvExceptionsWithCodes() {
        ScheduledExecutorService kicker = Executors.newSingleThreadScheduledExecutor();
        long calls = 0;
        long refused = 0;
        try {
            for (int sequence = 0; sequence < SEQUENCES; sequence++) {
                long seed = 0x1d10000L + sequence;
                RandomCalls random = new RandomCalls(seed);
                try (Arena arena = Arena.ofShared(); GuestMemory memory = GuestMemory.allocate(RAM);
                     VirtualMachine vm = VirtualMachine.create()) {
                    MemorySegment.copy(random.bytes((int) RAM), 0, memory.segment(),
                            java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (int) RAM);
                    MemorySegment callerMemory = arena.allocate(RAM, 4096);
                    Vcpu vcpu = vm.createVcpu();
                    for (int i = 0; i < CALLS; i++) {
                        calls++;
                        try {
                            apply(random, vm, memory, callerMemory, vcpu, kicker);
                        } catch (HvException e) {
                            refused++;
                            assertNotNull(e.code(), "seed 0x" + Long.toHexString(seed));
                            assertNotNull(e.getMessage());
                        }
                    }
                }
            }
        } finally {
            kicker.shutdownNow();
        }
        System.out.printf("idiomatic fuzz: %d sequences, %d calls, %d refused with HvException, 0 other failures%n",
                SEQUENCES, calls, refused);
    }

    private static void apply(RandomCalls random, VirtualMachine vm, GuestMemory memory, MemorySegment callerMemory,
                              Vcpu vcpu, ScheduledExecutorService kicker) {
        long a = random.value();
        long b = random.value();
        int c = random.field(0, 1, 2, 3, 7, 0x10, 0x174, 0xc0000080, 0x6800, 0x4002, 0x4016);
        Register register = Register.ofId(Math.floorMod(c, Register.values().length));
        switch (random.operation(14)) {
            case 0 -> vm.map(a, memory, Protection.ofBits(b & 7));
            case 1 -> vm.map(a, callerMemory.asSlice(0, Math.floorMod(b, RAM) + 1), Protection.ofBits(c & 7));
            case 2 -> vm.unmap(a, b);
            case 3 -> vm.protect(a, b, Protection.ofBits(c & 7));
            case 4 -> vcpu.set(register, a);
            case 5 -> vcpu.get(register);
            case 6 -> vcpu.setSegment(SegmentRegister.values()[Math.floorMod(c, 8)],
                    new Segment((int) a & 0xffff, b, (int) a, (int) (b & 0x1f0ff)));
            case 7 -> vcpu.writeMsr(c, a);
            case 8 -> vcpu.readMsr((int) a);
            case 9 -> vcpu.writeVmcs(c, a);
            case 10 -> vcpu.readVmcs((int) b);
            case 11 -> {
                kicker.schedule(vcpu::interrupt, 1, TimeUnit.MILLISECONDS);
                vcpu.run();
            }
            case 12 -> vcpu.runVmx(System.nanoTime() + 1_000_000);
            default -> {
                vcpu.requestInterruptWindow(a > 0);
                vcpu.injectInterrupt(c & 0xff);
            }
        }
    }
}
