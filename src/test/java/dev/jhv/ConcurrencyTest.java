package dev.jhv;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** vCPUs on many threads, a kicker and a memory mapper running beside them. */
@RequiresKvm
class ConcurrencyTest {
    private static final int VCPUS = 4;
    private static final long MILLIS = Long.getLong("jhv.soak.millis", 2000);
    private static final long PROMPT_NANOS = 2_000_000_000L;

    @Test
    void everyKickEndsARunPromptlyWhileMappingsChange() throws Exception {
        TestGuest guest = TestGuest.load("long");
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory ram = GuestMemory.allocate(Fixture.RAM_BYTES);
             GuestMemory scratch = GuestMemory.allocate(16 * 4096)) {
            guest.loadInto(ram.segment());
            vm.map(0, ram, Protection.ALL);
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Vcpu[] vcpus = new Vcpu[VCPUS];
            long[] lastExit = new long[VCPUS];   // written by vCPU i, read by the kicker under the array's lock
            long[] exits = new long[VCPUS];
            CountDownLatch ready = new CountDownLatch(VCPUS);
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < VCPUS; i++) {
                int index = i;
                threads.add(Thread.ofPlatform().name("vcpu-" + i).start(() -> {
                    try (Vcpu vcpu = vm.createVcpu()) {
                        LongMode.ring3(vcpu, guest, "u_spin");
                        vcpus[index] = vcpu;
                        ready.countDown();
                        while (!stop.get()) {
                            VmExit exit = vcpu.run();
                            if (!(exit instanceof VmExit.Interrupted)) {
                                throw new AssertionError("unexpected " + exit);
                            }
                            synchronized (lastExit) {
                                lastExit[index] = System.nanoTime();
                                exits[index]++;
                            }
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                        ready.countDown();
                    }
                }));
            }
            ready.await();
            Thread mapper = Thread.ofPlatform().name("mapper").start(() -> {
                long gpa = 0x20000000L;
                while (!stop.get()) {
                    vm.map(gpa, scratch, Protection.ALL);
                    vm.protect(gpa + 4096, 4096, Protection.READ);
                    vm.unmap(gpa, 16 * 4096);
                }
            });
            Random random = new Random(42);
            long end = System.nanoTime() + MILLIS * 1_000_000;
            long kicks = 0;
            long slowest = 0;
            while (System.nanoTime() < end && failure.get() == null) {
                int target = random.nextInt(VCPUS);
                long sent = System.nanoTime();
                vcpus[target].interrupt();
                kicks++;
                for (;;) {   // the kick must end a run of that vCPU: an exit after it
                    long exitedAt;
                    synchronized (lastExit) {
                        exitedAt = lastExit[target];
                    }
                    if (exitedAt - sent >= 0) {
                        slowest = Math.max(slowest, exitedAt - sent);
                        break;
                    }
                    assertTrue(System.nanoTime() - sent < PROMPT_NANOS, "kick " + kicks + " of vCPU " + target + " lost");
                    Thread.onSpinWait();
                }
                if (random.nextBoolean()) {
                    Thread.sleep(0, random.nextInt(200_000));
                }
            }
            stop.set(true);
            for (Vcpu vcpu : vcpus) {
                vcpu.interrupt();
            }
            for (Thread thread : threads) {
                thread.join(10_000);
                assertFalse(thread.isAlive(), "no deadlock: " + thread.getName() + " finished");
            }
            mapper.join(10_000);
            assertFalse(mapper.isAlive(), "the mapper finished");
            assertNull(failure.get(), () -> "failure: " + failure.get());
            long total = 0;
            for (long count : exits) {
                total += count;
            }
            System.out.printf("%d vCPUs, %d ms: %d kicks, %d interrupted exits, slowest kick %.1f ms, none lost%n",
                    VCPUS, MILLIS, kicks, total, slowest / 1e6);
        }
    }
}
