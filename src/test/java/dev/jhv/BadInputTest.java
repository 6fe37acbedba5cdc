package dev.jhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each kind of bad input gets its own clear error, changes nothing, and leaves the VM usable. */
@RequiresKvm
class BadInputTest {
    private static final long PAGE = 4096;

    private static HvException fails(HvReturn code, String messagePart, Executable call) {
        HvException e = assertThrows(HvException.class, call);
        assertEquals(code, e.code(), e.getMessage());
        assertTrue(e.getMessage().contains(messagePart), "message '" + e.getMessage() + "' mentions " + messagePart);
        return e;
    }

    @Test
    void misalignedOrEmptyRangesAreRejected() {
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory memory = GuestMemory.allocate(2 * PAGE)) {
            fails(HvReturn.BAD_ARGUMENT, "not page aligned", () -> vm.map(0x800, memory, Protection.ALL));
            fails(HvReturn.BAD_ARGUMENT, "multiple of 4096",
                    () -> vm.map(0, memory.segment().asSlice(0, 100), Protection.ALL));
            fails(HvReturn.BAD_ARGUMENT, "not page aligned",
                    () -> vm.map(0, memory.segment().asSlice(8, PAGE), Protection.ALL));
            fails(HvReturn.BAD_ARGUMENT, "multiple of 4096", () -> vm.unmap(0, 0));
            fails(HvReturn.BAD_ARGUMENT, "multiple of 4096", () -> vm.protect(0, 10, Protection.READ));
            fails(HvReturn.BAD_ARGUMENT, "size", () -> GuestMemory.allocate(123));
            assertNull(vm.protectionAt(0), "nothing was mapped");
        }
    }

    @Test
    void overlappingMapIsRejected() {
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory memory = GuestMemory.allocate(4 * PAGE)) {
            vm.map(PAGE, memory.segment().asSlice(0, 2 * PAGE), Protection.ALL);
            fails(HvReturn.BAD_ARGUMENT, "overlaps",
                    () -> vm.map(2 * PAGE, memory.segment().asSlice(2 * PAGE, 2 * PAGE), Protection.ALL));
            fails(HvReturn.BAD_ARGUMENT, "overlaps", () -> vm.map(0, memory.segment(), Protection.ALL));
            vm.map(3 * PAGE, memory.segment().asSlice(2 * PAGE, PAGE), Protection.ALL);   // adjacent is fine
        }
    }

    @Test
    void unmapOrProtectOfUnmappedRangesIsRejected() {
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory memory = GuestMemory.allocate(PAGE)) {
            fails(HvReturn.BAD_ARGUMENT, "not mapped", () -> vm.unmap(0, PAGE));
            vm.map(0, memory, Protection.ALL);
            fails(HvReturn.BAD_ARGUMENT, "only partly mapped", () -> vm.unmap(0, 2 * PAGE));
            fails(HvReturn.BAD_ARGUMENT, "not mapped", () -> vm.protect(PAGE, PAGE, Protection.READ));
            assertEquals(Protection.ALL, vm.protectionAt(0), "the failed calls changed nothing");
        }
    }

    @Test
    void protectionsKvmCannotExpressAreRejected() {
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory memory = GuestMemory.allocate(PAGE)) {
            fails(HvReturn.BAD_ARGUMENT, "cannot be given on KVM", () -> vm.map(0, memory, new Protection(false, true, false)));
            fails(HvReturn.BAD_ARGUMENT, "cannot be given on KVM", () -> vm.map(0, memory, new Protection(false, false, true)));
            fails(HvReturn.BAD_ARGUMENT, "unknown memory flags", () -> Protection.ofBits(0x10));
        }
    }

    @Test
    void callerMemoryMustBeNativeSharedAndAlive() {
        try (VirtualMachine vm = VirtualMachine.create()) {
            fails(HvReturn.BAD_ARGUMENT, "heap", () -> vm.map(0, MemorySegment.ofArray(new byte[4096]), Protection.ALL));
            try (Arena confined = Arena.ofConfined()) {
                MemorySegment segment = confined.allocate(PAGE, PAGE);
                fails(HvReturn.BAD_ARGUMENT, "confined arena", () -> vm.map(0, segment, Protection.ALL));
            }
            Arena closed = Arena.ofShared();
            MemorySegment stale = closed.allocate(PAGE, PAGE);
            closed.close();
            fails(HvReturn.BAD_ARGUMENT, "already closed", () -> vm.map(0, stale, Protection.ALL));
            try (Arena shared = Arena.ofShared()) {
                MemorySegment readOnly = shared.allocate(PAGE, PAGE).asReadOnly();
                fails(HvReturn.BAD_ARGUMENT, "read-only", () -> vm.map(0, readOnly, Protection.ALL));
                vm.map(0, readOnly, Protection.READ);
                fails(HvReturn.BAD_ARGUMENT, "read-only", () -> vm.protect(0, PAGE, Protection.ALL));
            }
            GuestMemory memory = GuestMemory.allocate(PAGE);
            memory.close();
            fails(HvReturn.BAD_ARGUMENT, "closed", () -> vm.map(PAGE, memory, Protection.ALL));
        }
    }

    @Test
    void vcpuCallsFromAnotherThreadFailWithoutSideEffects() throws Exception {
        try (Fixture f = Fixture.longMode(3, "u_sum")) {
            f.vcpu.set(Register.RAX, 7);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread other = Thread.ofPlatform().name("intruder").start(() -> {
                try {
                    for (Executable call : new Executable[] {
                        () -> f.vcpu.get(Register.RAX), () -> f.vcpu.set(Register.RAX, 1), f.vcpu::run,
                        () -> f.vcpu.readMsr(0x10), f.vcpu::close, f.vcpu::execTimeNanos}) {
                        fails(HvReturn.BAD_ARGUMENT, "intruder", call);
                    }
                    f.vcpu.interrupt();   // the one call any thread may make
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            other.join();
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            assertEquals(7, f.vcpu.get(Register.RAX), "nothing changed");
            assertInstanceOf(VmExit.Interrupted.class, f.vcpu.run());
        }
    }

    @Test
    void vcpuAfterDestroyAndVmAfterCloseFailCleanly() {
        VirtualMachine vm = VirtualMachine.create();
        Vcpu vcpu = vm.createVcpu();
        vcpu.close();
        vcpu.close();   // twice is fine
        fails(HvReturn.BAD_ARGUMENT, "destroyed", () -> vcpu.get(Register.RIP));
        fails(HvReturn.BAD_ARGUMENT, "destroyed", vcpu::run);
        Vcpu second = vm.createVcpu();
        assertEquals(0, second.id(), "the lowest free id is reused");
        vm.close();
        vm.close();
        fails(HvReturn.BAD_ARGUMENT, "destroyed", () -> second.set(Register.RAX, 1));
        fails(HvReturn.BAD_ARGUMENT, "VM is closed", vm::createVcpu);
        fails(HvReturn.BAD_ARGUMENT, "VM is closed", () -> vm.unmap(0, PAGE));
    }

    @Test
    void vcpuCannotBelongToAVirtualThread() throws Exception {
        try (VirtualMachine vm = VirtualMachine.create()) {
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            Thread.ofVirtual().start(() -> thrown.set(assertThrows(HvException.class, vm::createVcpu))).join();
            assertTrue(thrown.get().getMessage().contains("virtual thread"));
        }
    }

    @Test
    void badRegisterValuesAndBuffersAreRejected() {
        try (Fixture f = Fixture.longMode(3, "u_sum")) {
            fails(HvReturn.BAD_ARGUMENT, "16 bits", () -> f.vcpu.set(Register.CS, 0x10000));
            fails(HvReturn.BAD_ARGUMENT, "reserved", () -> f.vcpu.set(Register.CR1, 1));
            fails(HvReturn.BAD_ARGUMENT, "reserved bits", () -> f.vcpu.set(Register.TSS_AR, 0x100));
            fails(HvReturn.BAD_ARGUMENT, "XCR0", () -> f.vcpu.set(Register.XCR0, 0));
            fails(HvReturn.BAD_ARGUMENT, "4096 bytes", () -> f.vcpu.readFpState(MemorySegment.ofArray(new byte[512])));
            fails(HvReturn.BAD_ARGUMENT, "not supported", () -> f.vcpu.readMsr(0x12345678));
            fails(HvReturn.BAD_ARGUMENT, "0-255", () -> f.vcpu.injectInterrupt(256));
            fails(HvReturn.BUSY, "cannot take an interrupt", () -> f.vcpu.injectInterrupt(0x20));   // IF is clear
            Register invalid = Register.ofId(Register.values().length);
            assertNull(invalid, "no register has id 51 (HV_X86_REGISTERS_MAX)");
            f.vcpu.set(Register.RDI, 3);
            assertEquals(6, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value(), "the vCPU still works");
            fails(HvReturn.BUSY, "has run", () -> f.vcpu.setCpuid(CpuidTable.hostSupported()));
        }
    }
}
