package dev.jhv;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Guests that try what a hostile one would: the JVM stays up, the host untouched, the VM usable. */
@RequiresKvm
class HostileGuestTest {
    @Test
    void scanningGuestPhysicalSpaceReachesOnlyMappedMemory() {
        try (Fixture f = Fixture.longMode(3, "u_scan")) {
            long step = 2 << 20;
            f.vcpu.set(Register.RDI, 0);
            f.vcpu.set(Register.RSI, 1L << 30);   // all the guest's page tables map
            f.vcpu.set(Register.RDX, step);
            int exits = 0;
            long lowest = Long.MAX_VALUE;
            for (;;) {
                var access = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
                if (access.isWrite()) {
                    assertEquals(f.symbol("MMIO_BASE") + 8, access.address());
                    assertEquals(512, access.value(), "every 2 MiB of the first GiB was read");
                    break;
                }
                exits++;
                lowest = Math.min(lowest, access.address());
                access.complete(0);
            }
            assertEquals(512 - Fixture.RAM_BYTES / step, exits, "every read outside the 4 MiB of RAM exits");
            assertEquals(Fixture.RAM_BYTES, lowest);
        }
    }

    @Test
    void everyMmioAccessSizeArrivesWhole() {
        try (Fixture f = Fixture.longMode(3, "u_sizes")) {
            long[][] expected = {{1, 0x88}, {2, 0x7788}, {4, 0x55667788}, {8, 0x1122334455667788L},
                {8, 0x1122334455667788L}, {8, 0}};
            for (long[] access : expected) {
                var write = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
                assertTrue(write.isWrite());
                assertEquals(access[0], write.size());
                assertEquals(access[1], write.value(), "size " + access[0]);
            }
        }
    }

    @Test
    void longStringOperationsToIoAndMmioComplete() {
        try (Fixture f = Fixture.longMode(0, "k_rep_outs")) {
            f.vcpu.set(Register.RSI, 0x20000);
            int exits = 0;
            VmExit exit;
            while ((exit = f.vcpu.run()) instanceof VmExit.PortIo io) {
                assertEquals(0xe9, io.port());
                exits += io.count();
            }
            assertInstanceOf(VmExit.Halt.class, exit);
            assertEquals(10000, exits);
            assertEquals(0, f.vcpu.get(Register.RCX));
        }
        try (Fixture f = Fixture.longMode(0, "k_rep_movs")) {
            f.vcpu.set(Register.RSI, 0x20000);
            long bytes = 0;
            VmExit exit;
            while ((exit = f.vcpu.run()) instanceof VmExit.Mmio mmio) {
                assertTrue(mmio.isWrite());
                bytes += mmio.size();
            }
            assertInstanceOf(VmExit.Halt.class, exit);
            assertEquals(4096, bytes);
        }
    }

    @Test
    void interruptStormIsDeliveredOneByOne() {
        try (Fixture f = Fixture.longMode(3, "u_spin")) {
            f.vcpu.set(Register.RFLAGS, 0x202);
            int delivered = 0;
            for (int i = 0; i < 200; i++) {
                // As a client must: inject only when the guest can take it (here after the handler's IRETQ).
                f.vcpu.requestInterruptWindow(true);
                assertInstanceOf(VmExit.InterruptWindow.class, f.vcpu.run());
                assertTrue(f.vcpu.readyForInterrupt());
                f.vcpu.requestInterruptWindow(false);
                f.vcpu.injectInterrupt(0x40 + i % 64);
                var vector = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
                assertEquals(0x40 + i % 64, vector.value());
                assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());   // the error-code report
                delivered++;
            }
            assertEquals(200, delivered);
        }
    }

    @Test
    void executingFromMemoryWithoutAccessStopsCleanly() {
        try (Fixture f = Fixture.longMode(3, "u_sum")) {
            long code = f.symbol("u_sum") & ~0xfffL;
            f.vm.protect(code, 4096, Protection.NONE);
            f.vcpu.set(Register.RDI, 3);
            VmExit exit = f.vcpu.run();
            assertTrue(exit instanceof VmExit.InternalError || exit instanceof VmExit.Mmio
                    || exit instanceof VmExit.Shutdown, "a clean stop, not the code running: " + exit);
            f.vm.protect(code, 4096, Protection.ALL);
            f.vcpu.set(Register.RIP, f.symbol("u_sum"));
            f.vcpu.set(Register.RDI, 3);
            assertEquals(6, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value(), "usable again");
        }
    }

    @Test
    void anInstructionTheHostRefusesEndsTheRunWithAReason() {
        try (Fixture f = Fixture.longMode(0, "k_popcnt")) {
            f.vcpu.set(Register.RAX, 0xff);
            VmExit exit = f.vcpu.run();
            if (Hypervisor.backend() == Hypervisor.Backend.PVM) {
                var error = assertInstanceOf(VmExit.InternalError.class, exit);
                assertTrue(error.describe().contains("could not emulate"), error.describe());
                assertTrue(error.describe().contains("f3 48 0f b8"), "the POPCNT bytes: " + error.describe());
            } else {
                assertInstanceOf(VmExit.Halt.class, exit);
                assertEquals(8, f.vcpu.get(Register.RBX));
            }
        }
    }
}
