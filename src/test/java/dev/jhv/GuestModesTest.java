package dev.jhv;

import java.lang.foreign.ValueLayout;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One guest per processor mode, each checked by what it computed and which exits it caused. */
@RequiresKvm
class GuestModesTest {
    private static final long RAM = 4 << 20;

    @Test
    void realModeComputesAndDoesPortAndStringIo() {
        TestGuest guest = TestGuest.load("realmode");
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory ram = GuestMemory.allocate(RAM)) {
            guest.loadInto(ram.segment());
            vm.map(0, ram, Protection.ALL);
            Vcpu vcpu = vm.createVcpu();
            for (SegmentRegister register : new SegmentRegister[] {SegmentRegister.CS, SegmentRegister.DS,
                SegmentRegister.ES, SegmentRegister.SS}) {
                vcpu.setSegment(register, Segment.real(0, register == SegmentRegister.CS));
            }
            vcpu.set(Register.RIP, guest.symbol("rm_start"));
            vcpu.set(Register.RSP, 0x7000);

            var out = assertInstanceOf(VmExit.PortIo.class, vcpu.run());
            assertEquals(0x3f8, out.port());
            assertFalse(out.isIn());
            assertEquals(1, out.size());
            assertEquals(55, out.value(), "sum 1..10");

            var in = assertInstanceOf(VmExit.PortIo.class, vcpu.run());
            assertEquals(0x60, in.port());
            assertTrue(in.isIn());
            in.complete(0x41);

            var word = assertInstanceOf(VmExit.PortIo.class, vcpu.run());
            assertEquals(0x62, word.port());
            assertEquals(2, word.size());
            assertEquals(0xbeef, word.value());
            assertEquals(0x42, ram.segment().get(ValueLayout.JAVA_BYTE, guest.symbol("rm_result")),
                    "the IN answer plus one");

            StringBuilder text = new StringBuilder();
            for (int i = 0; i < 4; i++) {
                var element = assertInstanceOf(VmExit.PortIo.class, vcpu.run());
                assertEquals(0xe9, element.port());
                assertEquals(1, element.count());
                text.append((char) element.value());
            }
            assertEquals("jhv!", text.toString());

            var stringIn = assertInstanceOf(VmExit.PortIo.class, vcpu.run());
            assertEquals(0xe8, stringIn.port());
            assertTrue(stringIn.isIn());
            assertEquals(4, stringIn.count(), "rep insb arrives as one exit");
            for (int i = 0; i < 4; i++) {
                stringIn.complete(i, 0x10 + i);
            }

            assertInstanceOf(VmExit.Halt.class, vcpu.run());
            assertEquals(~0x13121110, ram.segment().get(ValueLayout.JAVA_INT, guest.symbol("rm_result") + 4));
            assertEquals(guest.symbol("rm_message"), vcpu.get(Register.RIP), "HLT is the last instruction");
        }
    }

    @Test
    void protectedModeComputesAndAccessesMmio() {
        try (Fixture f = new Fixture("prot32")) {
            Vcpu vcpu = f.vcpu;
            vcpu.setSegment(SegmentRegister.CS, Segment.code32(0x08, 0));
            for (SegmentRegister register : new SegmentRegister[] {SegmentRegister.DS, SegmentRegister.ES,
                SegmentRegister.SS}) {
                vcpu.setSegment(register, Segment.data32(0x10, 0));
            }
            vcpu.set(Register.CR0, 0x11);   // PE, ET
            vcpu.set(Register.RIP, f.symbol("pm_start"));
            vcpu.set(Register.RSP, 0x7000);
            vcpu.set(Register.RCX, 10);

            var out = assertInstanceOf(VmExit.PortIo.class, vcpu.run());
            assertEquals(0x10, out.port());
            assertEquals(4, out.size());
            assertEquals(3628800, out.value(), "10!");
            assertEquals(3628800, f.ram.segment().get(ValueLayout.JAVA_INT, f.symbol("pm_result")));

            var read = assertInstanceOf(VmExit.Mmio.class, vcpu.run());
            assertEquals(0xd0000000L, read.address());
            assertFalse(read.isWrite());
            assertEquals(4, read.size());
            read.complete(0x12345678);

            var write = assertInstanceOf(VmExit.Mmio.class, vcpu.run());
            assertEquals(0xd0000008L, write.address());
            assertTrue(write.isWrite());
            assertEquals(0x12345679, write.value());
            assertEquals(0x12345678, vcpu.get(Register.RBX));
            assertInstanceOf(VmExit.Halt.class, vcpu.run());
        }
    }

    @Test
    void longModeRing0ComputesAndHalts() {
        try (Fixture f = Fixture.longMode(0, "k_sum_squares")) {
            f.vcpu.set(Register.RDI, 20);
            var out = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
            assertEquals(0x10, out.port());
            assertEquals(2870, out.value(), "1^2 + ... + 20^2");
            assertInstanceOf(VmExit.Halt.class, f.vcpu.run());
            assertEquals(2870, f.vcpu.get(Register.RAX));
            assertEquals(0, f.vcpu.get(Register.RDI));
            assertEquals(0, f.vcpu.segment(SegmentRegister.SS).dpl(), "ran in ring 0");
        }
    }

    @Test
    void longModeRing3RunsNativelyAndReportsThroughMmio() {
        try (Fixture f = Fixture.longMode(3, "u_sum")) {
            f.vcpu.set(Register.RDI, 1_000_000);
            var report = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
            assertTrue(report.isWrite());
            assertEquals(f.symbol("MMIO_BASE"), report.address());
            assertEquals(8, report.size());
            assertEquals(500_000_500_000L, report.value());
            assertEquals(3, f.vcpu.segment(SegmentRegister.SS).dpl(), "ran in ring 3");
        }
    }

    @Test
    void ring3PortIoGoesThroughTheTssBitmap() {
        try (Fixture f = Fixture.longMode(3, "u_out")) {
            f.vcpu.set(Register.RSI, 0x5a);
            var out = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
            assertEquals(0xe9, out.port());
            assertEquals(0x5a, out.value());
            var in = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
            assertTrue(in.isIn());
            in.complete(0xa5);
            var report = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
            assertEquals(0xa5, report.value() & 0xff);
        }
    }
}
