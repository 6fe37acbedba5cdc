package dev.jhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** vCPU functions against real guests: kicks, SMP, FP state, MSRs, events, debug, exec time. */
@RequiresKvm
class VcpuTest {
    @Test
    void interruptFromAnotherThreadStopsASpinningGuestWhichThenResumes() throws Exception {
        try (Fixture f = Fixture.longMode(3, "u_spin");
             ExecutorService kicker = Executors.newSingleThreadExecutor()) {
            long spinStart = f.symbol("u_spin");
            long previousCount = 0;
            for (int round = 0; round < 3; round++) {
                Future<?> kick = kicker.submit(() -> {
                    sleep(20);
                    f.vcpu.interrupt();
                });
                assertInstanceOf(VmExit.Interrupted.class, f.vcpu.run());
                kick.get();
                long rip = f.vcpu.get(Register.RIP);
                assertTrue(rip == spinStart || rip == spinStart + 3, "RIP inside the loop: 0x" + Long.toHexString(rip));
                long count = f.vcpu.get(Register.RAX);
                assertTrue(count > previousCount, "the guest kept counting: " + count + " after " + previousCount);
                previousCount = count;
            }
        }
    }

    @Test
    void interruptBeforeRunIsKeptAndDeliveredOnce() {
        try (Fixture f = Fixture.longMode(3, "u_sum")) {
            f.vcpu.set(Register.RDI, 10);
            f.vcpu.interrupt();
            assertInstanceOf(VmExit.Interrupted.class, f.vcpu.run(), "a kick before entry is not lost");
            var report = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run(), "and not delivered twice");
            assertEquals(55, report.value());
        }
    }

    @Test
    void twoVcpusOnTwoThreadsComputeIndependently() throws Exception {
        try (Fixture f = new Fixture("long"); ExecutorService threads = Executors.newFixedThreadPool(2)) {
            f.vcpu.close();
            CountDownLatch bothCreated = new CountDownLatch(2);
            Future<long[]> first = threads.submit(() -> sumOnOwnVcpu(f, 1000, bothCreated));
            Future<long[]> second = threads.submit(() -> sumOnOwnVcpu(f, 2000, bothCreated));
            long[] a = first.get(10, TimeUnit.SECONDS);
            long[] b = second.get(10, TimeUnit.SECONDS);
            assertEquals(500500, a[1]);
            assertEquals(2001000, b[1]);
            assertNotEquals(a[0], b[0], "distinct vCPU ids");
            assertTrue(a[0] <= 1 && b[0] <= 1, "ids 0 and 1");
        }
    }

    private static long[] sumOnOwnVcpu(Fixture f, long n, CountDownLatch bothCreated) throws InterruptedException {
        try (Vcpu vcpu = f.vm.createVcpu()) {
            bothCreated.countDown();
            bothCreated.await();
            LongMode.ring3(vcpu, f.guest, "u_sum");
            vcpu.set(Register.RDI, n);
            var report = assertInstanceOf(VmExit.Mmio.class, vcpu.run());
            return new long[] {vcpu.id(), report.value()};
        }
    }

    @Test
    void fpStateTravelsBothWaysInXsaveFormat() {
        try (Fixture f = Fixture.longMode(3, "u_fp"); Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(Vcpu.FP_STATE_BYTES);
            f.vcpu.readFpState(state);
            assertEquals(0x1f80, state.get(ValueLayout.JAVA_INT, 24), "power-on MXCSR");
            state.set(ValueLayout.JAVA_LONG, 160, 0x0123456789abcdefL);        // XMM0 low
            state.set(ValueLayout.JAVA_LONG, 168, 0xfedcba9876543210L);        // XMM0 high
            f.vcpu.writeFpState(state);
            f.vcpu.set(Register.RSI, 0x5555aaaa5555aaaaL);

            assertEquals(0x0123456789abcdefL, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value());
            assertEquals(0xfedcba9876543210L, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value());
            assertEquals(0x1f80, assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value(), "guest MXCSR");
            assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());

            f.vcpu.readFpState(state);
            assertEquals(0x5555aaaa5555aaaaL, state.get(ValueLayout.JAVA_LONG, 176), "XMM1 low, written by the guest");
        }
    }

    @Test
    void msrsRoundTripAndUnknownMsrsExitToTheClient() {
        try (Fixture f = Fixture.longMode(0, "k_msr")) {
            f.vcpu.writeMsr(0xc0000082, 0xffffffff81000000L);   // LSTAR
            assertEquals(0xffffffff81000000L, f.vcpu.readMsr(0xc0000082));

            assertEquals(0x81000000L, assertInstanceOf(VmExit.PortIo.class, f.vcpu.run()).value());
            assertEquals(0xffffffffL, assertInstanceOf(VmExit.PortIo.class, f.vcpu.run()).value());
            assertEquals(0x0023001000000000L, f.vcpu.readMsr(0xc0000081), "STAR written by the guest");

            var read = assertInstanceOf(VmExit.MsrAccess.class, f.vcpu.run());
            assertFalse(read.isWrite());
            assertEquals(0x12345, read.index());
            read.complete(0xaabbccdd11223344L);
            assertEquals(0x11223344L, assertInstanceOf(VmExit.PortIo.class, f.vcpu.run()).value());
            assertEquals(0xaabbccddL, assertInstanceOf(VmExit.PortIo.class, f.vcpu.run()).value());

            var write = assertInstanceOf(VmExit.MsrAccess.class, f.vcpu.run());
            assertTrue(write.isWrite());
            assertEquals(0x12345, write.index());
            assertEquals(0x0000000500000006L, write.value());
            assertInstanceOf(VmExit.Halt.class, f.vcpu.run());
        }
    }

    @Test
    void refusedMsrReadGivesTheGuestAGeneralProtectionFault() {
        try (Fixture f = Fixture.longMode(0, "k_msr")) {
            f.vcpu.run();
            f.vcpu.run();
            assertInstanceOf(VmExit.MsrAccess.class, f.vcpu.run()).fail();
            var vector = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
            assertEquals(0x80, vector.port());
            assertEquals(13, vector.value(), "#GP");
            assertEquals(0, assertInstanceOf(VmExit.PortIo.class, f.vcpu.run()).value(), "error code 0");
        }
    }

    @Test
    void injectedInterruptRunsTheGuestHandlerAndReturns() {
        try (Fixture f = Fixture.longMode(3, "u_spin")) {
            f.vcpu.set(Register.RFLAGS, 0x202);   // IF
            f.vcpu.interrupt();
            assertInstanceOf(VmExit.Interrupted.class, f.vcpu.run());
            assertTrue(f.vcpu.readyForInterrupt());
            f.vcpu.injectInterrupt(0x40);
            var vector = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
            assertEquals(0x80, vector.port());
            assertEquals(0x40, vector.value());
            assertEquals(0, assertInstanceOf(VmExit.PortIo.class, f.vcpu.run()).value());
            long countAtInterrupt = f.vcpu.get(Register.RAX);
            // The handler returned to the loop (IRETQ): RAX keeps counting.
            Thread kicker = Thread.ofPlatform().start(() -> {
                sleep(10);
                f.vcpu.interrupt();
            });
            assertInstanceOf(VmExit.Interrupted.class, f.vcpu.run());
            assertTrue(f.vcpu.get(Register.RAX) > countAtInterrupt);
            join(kicker);
        }
    }

    @Test
    void exceptionWithoutUsableIdtIsATripleFault() {
        try (Fixture f = Fixture.longMode(0, "k_ud2")) {
            f.vcpu.set(Register.IDT_LIMIT, 0);
            assertInstanceOf(VmExit.Shutdown.class, f.vcpu.run());
        }
    }

    @Test
    void exceptionWithIdtReachesTheGuestHandler() {
        try (Fixture f = Fixture.longMode(0, "k_ud2")) {
            var vector = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
            assertEquals(6, vector.value(), "#UD");
        }
    }

    @Test
    void singleStepReportsEveryInstructionOfKernelCode() {
        try (Fixture f = Fixture.longMode(0, "k_sum_squares")) {
            f.vcpu.set(Register.RDI, 2);
            f.vcpu.setGuestDebug(true);
            long start = f.symbol("k_sum_squares");
            var step = assertInstanceOf(VmExit.Debug.class, f.vcpu.run());
            assertEquals(1, step.exception());
            assertEquals(start + 2, step.pc(), "after xor eax,eax");
            assertEquals(start + 2, f.vcpu.get(Register.RIP));
            var next = assertInstanceOf(VmExit.Debug.class, f.vcpu.run());
            assertEquals(start + 5, next.pc(), "after mov rdx,rdi");
            f.vcpu.setGuestDebug(false);
            assertEquals(5, assertInstanceOf(VmExit.PortIo.class, f.vcpu.run()).value());
        }
    }

    @Test
    void execTimeGrowsWhileTheGuestRuns() {
        try (Fixture f = Fixture.longMode(3, "u_spin")) {
            assertEquals(0, f.vcpu.execTimeNanos());
            Thread kicker = Thread.ofPlatform().start(() -> {
                sleep(30);
                f.vcpu.interrupt();
            });
            f.vcpu.run();
            join(kicker);
            long first = f.vcpu.execTimeNanos();
            assertTrue(first >= 20_000_000, "at least most of the 30 ms spent in the guest: " + first);
            kicker = Thread.ofPlatform().start(() -> {
                sleep(10);
                f.vcpu.interrupt();
            });
            f.vcpu.run();
            join(kicker);
            assertTrue(f.vcpu.execTimeNanos() > first);
        }
    }

    @Test
    void registerWritesAfterAnInExitKeepTheAnswer() {
        try (Fixture f = Fixture.longMode(3, "u_out")) {
            f.vcpu.set(Register.RSI, 1);
            f.vcpu.run();
            var in = assertInstanceOf(VmExit.PortIo.class, f.vcpu.run());
            in.complete(0x77);
            f.vcpu.set(Register.RBX, 0xb0b);   // a register write before the IN is finished
            var report = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run());
            assertEquals(0x77, report.value() & 0xff);
            assertEquals(0xb0b, f.vcpu.get(Register.RBX));
        }
    }

    @Test
    void tprIsCr8InApicLayout() {
        try (Fixture f = Fixture.longMode(3, "u_sum")) {
            f.vcpu.set(Register.TPR, 0x90);
            f.vcpu.set(Register.RDI, 1);
            f.vcpu.run();
            assertEquals(0x90, f.vcpu.get(Register.TPR));
        }
    }

    @Test
    void tscIsSharedByAllVcpusAndSyncTscSetsItWhereTheHostCan() throws Exception {
        try (Fixture f = Fixture.longMode(3, "u_rdtsc")) {
            long first = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value();
            long second = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value();
            assertTrue(second > first, "the guest TSC advances");
            long target = 1L << 40;
            if (Hypervisor.backend() == Hypervisor.Backend.PVM) {
                HvException e = org.junit.jupiter.api.Assertions.assertThrows(HvException.class, () -> f.vm.syncTsc(target));
                assertEquals(HvReturn.UNSUPPORTED, e.code());
                // Every vCPU reads the same counter: one created later continues from where this one is.
                long[] other = new long[1];
                Thread thread = Thread.ofPlatform().start(() -> {
                    try (Vcpu vcpu = f.vm.createVcpu()) {
                        LongMode.ring3(vcpu, f.guest, "u_rdtsc");
                        other[0] = ((VmExit.Mmio) vcpu.run()).value();
                    }
                });
                thread.join();
                assertTrue(other[0] > second, "vCPU 1 reads a TSC later than vCPU 0's last reading");
            } else {
                f.vm.syncTsc(target);
                f.vcpu.set(Register.RIP, f.symbol("u_rdtsc"));
                long after = assertInstanceOf(VmExit.Mmio.class, f.vcpu.run()).value();
                assertTrue(after >= target && after - target < 1L << 36, "guest TSC near the value set: " + after);
            }
        }
    }

    @Test
    void closingTheVmStopsVcpusRunningOnOtherThreads() throws Exception {
        TestGuest guest = TestGuest.load("long");
        VirtualMachine vm = VirtualMachine.create();
        try (GuestMemory ram = GuestMemory.allocate(Fixture.RAM_BYTES)) {
            guest.loadInto(ram.segment());
            vm.map(0, ram, Protection.ALL);
            CountDownLatch running = new CountDownLatch(1);
            java.util.concurrent.atomic.AtomicReference<Throwable> outcome = new java.util.concurrent.atomic.AtomicReference<>();
            Thread vcpuThread = Thread.ofPlatform().start(() -> {
                Vcpu vcpu = vm.createVcpu();
                LongMode.ring3(vcpu, guest, "u_spin");
                running.countDown();
                try {
                    vcpu.run();
                } catch (Throwable t) {
                    outcome.set(t);
                }
            });
            running.await();
            sleep(20);
            long start = System.nanoTime();
            vm.close();
            vcpuThread.join(5000);
            assertFalse(vcpuThread.isAlive(), "the vCPU thread left run()");
            assertTrue(System.nanoTime() - start < 1_000_000_000L, "promptly");
            HvException stopped = assertInstanceOf(HvException.class, outcome.get());
            assertTrue(stopped.getMessage().contains("closed"), stopped.getMessage());
            assertTrue(vm.vcpus().isEmpty());
        } finally {
            vm.close();
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void join(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
