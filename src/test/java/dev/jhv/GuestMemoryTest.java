package dev.jhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Mapping, protection and unmapping as the guest sees them. */
@RequiresKvm
class GuestMemoryTest {
    private static final long PAGE = 4096;

    @Test
    void readOnlyPageMakesWritesExitAndKeepsTheData() {
        try (Fixture f = Fixture.longMode(3, "u_store")) {
            long data = f.symbol("data");
            long original = f.ram.segment().get(ValueLayout.JAVA_LONG, data);
            f.vm.protect(data, PAGE, Protection.READ_EXECUTE);
            f.vcpu.set(Register.RDI, data);
            f.vcpu.set(Register.RSI, 0x4242);

            var write = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
            assertTrue(write.isWrite());
            assertEquals(data, write.address());
            assertEquals(0x4242, write.value());
            var report = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
            assertEquals(f.symbol("MMIO_BASE"), report.address());
            assertEquals(original, report.value(), "the guest reads the unchanged value");
            assertEquals(original, f.ram.segment().get(ValueLayout.JAVA_LONG, data));

            f.vm.protect(data, PAGE, Protection.ALL);
            f.vcpu.set(Register.RIP, f.symbol("u_store"));
            report = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run(), "writable again: no exit for the store");
            assertEquals(0x4242, report.value());
            assertEquals(0x4242, f.ram.segment().get(ValueLayout.JAVA_LONG, data));
        }
    }

    @Test
    void protectingPartOfAMappingSplitsIt() {
        try (Fixture f = Fixture.longMode(3, "u_store")) {
            long data = f.symbol("data");
            f.vm.protect(data, PAGE, Protection.READ);
            assertEquals(Protection.ALL, f.vm.protectionAt(data - PAGE));
            assertEquals(Protection.READ, f.vm.protectionAt(data));
            assertEquals(Protection.ALL, f.vm.protectionAt(data + PAGE));
            // The page below is still writable: the store there does not exit.
            f.vcpu.set(Register.RDI, data - 8);
            f.vcpu.set(Register.RSI, 7);
            assertEquals(7, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value());
        }
    }

    @Test
    void unmappedPageMakesAccessesExitAndTheClientAnswers() {
        try (Fixture f = Fixture.longMode(3, "u_load")) {
            long data = f.symbol("data");
            f.vm.unmap(data, PAGE);
            assertNull(f.vm.protectionAt(data));
            f.vcpu.set(Register.RDI, data + 0x10);
            var read = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
            assertFalse(read.isWrite());
            assertEquals(data + 0x10, read.address());
            read.complete(0x600dcafeL);
            assertEquals(0x600dcafeL, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value());
        }
    }

    @Test
    void protectionNoneMakesEveryAccessExit() {
        try (Fixture f = Fixture.longMode(3, "u_load")) {
            long data = f.symbol("data");
            f.vm.protect(data, PAGE, Protection.NONE);
            f.vcpu.set(Register.RDI, data);
            var read = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
            assertEquals(data, read.address());
            assertEquals(Protection.NONE, f.vm.protectionAt(data), "still mapped, without access");
        }
    }

    @Test
    void hostAndGuestShareCallerMemory() {
        try (Fixture f = new Fixture("long"); Arena arena = Arena.ofShared()) {
            MemorySegment extra = arena.allocate(2 * PAGE, PAGE);
            extra.set(ValueLayout.JAVA_LONG, 0, 0xfeedL);
            long gpa = 0x40000000L - 2 * PAGE;   // still inside the guest's identity-mapped first GiB
            f.vm.map(gpa, extra, Protection.ALL);
            LongMode.ring3(f.vcpu, f.guest, "u_store");
            f.vcpu.set(Register.RDI, gpa + PAGE);
            f.vcpu.set(Register.RSI, 0xbeef);
            assertEquals(0xbeef, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value());
            assertEquals(0xbeef, extra.get(ValueLayout.JAVA_LONG, PAGE), "guest write seen by the host");
            f.vcpu.set(Register.RIP, f.symbol("u_load"));
            f.vcpu.set(Register.RDI, gpa);
            assertEquals(0xfeed, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value(), "host write seen by the guest");
            f.vm.unmap(gpa, 2 * PAGE);
        }
    }

    @Test
    void anArenaCannotBeClosedWhileAGuestRunsOnItsMemory() throws Exception {
        try (Fixture f = new Fixture("long")) {
            Arena arena = Arena.ofShared();
            MemorySegment extra = arena.allocate(PAGE, PAGE);
            f.vm.map(0x3fff0000L, extra, Protection.ALL);
            LongMode.ring3(f.vcpu, f.guest, "u_spin");
            Thread closer = Thread.ofPlatform().start(() -> {
                VcpuTest.sleep(20);
                assertThrows(IllegalStateException.class, arena::close, "in use by the running guest");
                f.vcpu.interrupt();
            });
            assertInstanceOf(VmExit.Interrupted.class, f.vcpu.run());
            closer.join();
            assertTrue(arena.scope().isAlive());
            arena.close();   // now the guest is not running: the close goes through
            HvException e = assertThrows(HvException.class, f.vcpu::run);
            assertEquals(HvReturn.FAULT, e.code());
            assertNull(f.vm.protectionAt(0x3fff0000L), "the freed memory was unmapped");
        }
    }

    @Test
    void guestMemoryOutlivesItsCloseWhileMapped() {
        try (VirtualMachine vm = VirtualMachine.create()) {
            GuestMemory memory = GuestMemory.allocate(PAGE);
            vm.map(0, memory, Protection.ALL);
            memory.close();
            memory.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 1);   // still mapped: still there
            vm.unmap(0, PAGE);
            assertThrows(IllegalStateException.class, () -> memory.segment().get(ValueLayout.JAVA_BYTE, 0),
                    "freed once the last mapping is gone");
        }
    }

    @Test
    void memfdAndFileBackingsWork(@TempDir Path directory) {
        try (Fixture f = new Fixture("long");
             GuestMemory memfd = GuestMemory.allocate(PAGE, GuestMemory.Backing.MEMFD);
             GuestMemory file = GuestMemory.mapFile(directory.resolve("guest.ram"), PAGE)) {
            f.vm.map(0x30000000L, memfd, Protection.ALL);
            f.vm.map(0x30001000L, file, Protection.ALL);
            LongMode.ring3(f.vcpu, f.guest, "u_store");
            f.vcpu.set(Register.RDI, 0x30000000L);
            f.vcpu.set(Register.RSI, 0x1234);
            f.vcpu.run();
            assertEquals(0x1234, memfd.segment().get(ValueLayout.JAVA_LONG, 0));
            f.vcpu.set(Register.RIP, f.symbol("u_store"));
            f.vcpu.set(Register.RDI, 0x30001000L);
            f.vcpu.run();
            assertEquals(0x1234, file.segment().get(ValueLayout.JAVA_LONG, 0));
            assertTrue(Files.exists(directory.resolve("guest.ram")));
        }
    }

    @Test
    void transparentHugePageBackingIsUsable() {
        try (VirtualMachine vm = VirtualMachine.create();
             GuestMemory memory = GuestMemory.allocate(4 << 20, GuestMemory.Backing.ANONYMOUS_HUGE)) {
            vm.map(0, memory, Protection.ALL);
            assertEquals(Protection.ALL, vm.protectionAt((4 << 20) - 1));
        }
    }

    @Test
    void invalidateTlbMakesHostPageTableChangesVisible() {
        try (Fixture f = Fixture.longMode(3, "u_load")) {
            MemorySegment ram = f.ram.segment();
            long pageDirectory = f.symbol("PD_ADDR");
            long address = 0x200000 + 0x20000;          // through page-directory entry 1, a 2 MiB page
            ram.set(ValueLayout.JAVA_LONG, address, 0x2222L);
            f.vcpu.set(Register.RDI, address);
            assertEquals(0x2222L, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value());

            ram.set(ValueLayout.JAVA_LONG, pageDirectory + 8, 0x87L);   // the host points entry 1 at 0
            f.vcpu.invalidateTlb();
            f.vcpu.set(Register.RIP, f.symbol("u_load"));
            assertEquals(ram.get(ValueLayout.JAVA_LONG, 0x20000), assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value(),
                    "the guest now reads physical 0x20000 through the changed entry");
        }
    }
}
