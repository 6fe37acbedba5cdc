package dev.jhv;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Nothing stays behind when VMs come and go, and access to /dev/kvm is checked with a useful answer. */
class LifetimeTest {
    private static final int CYCLES = Integer.getInteger("jhv.soak.cycles", 10_000);

    @Test
    @RequiresKvm
    void createRunAndDestroyLeaveNoDescriptorsOrMappingsBehind() throws IOException {
        TestGuest guest = TestGuest.load("long");
        cycle(guest);   // the first cycle loads classes and creates the per-thread buffers
        long descriptors = count(Path.of("/proc/self/fd"));
        long mappings = Files.readAllLines(Path.of("/proc/self/maps")).size();
        System.gc();
        long rss = residentKib();
        for (int i = 0; i < CYCLES; i++) {
            cycle(guest);
        }
        System.gc();   // the Java heap is not what is measured: give back what garbage it holds
        long descriptorsAfter = count(Path.of("/proc/self/fd"));
        long mappingsAfter = Files.readAllLines(Path.of("/proc/self/maps")).size();
        long rssAfter = residentKib();
        System.out.printf("%d cycles: descriptors %d -> %d, mappings %d -> %d, resident %d -> %d KiB%n", CYCLES,
                descriptors, descriptorsAfter, mappings, mappingsAfter, rss, rssAfter);
        assertEquals(descriptors, descriptorsAfter, "file descriptors");
        assertTrue(mappingsAfter - mappings < 20, "mappings stay flat (the JVM's own may move a little): "
                + mappings + " -> " + mappingsAfter);
        // Each cycle maps 4 MiB of guest RAM and touches part of it: had those pages stayed, 10,000
        // cycles would hold gigabytes. What may move is the JVM's own (code cache, heap sizing).
        assertTrue(rssAfter - rss < 64 * 1024, "resident memory stays flat: " + rss + " -> " + rssAfter + " KiB");
    }

    private static void cycle(TestGuest guest) {
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory ram = GuestMemory.allocate(Fixture.RAM_BYTES)) {
            guest.loadInto(ram.segment());
            vm.map(0, ram, Protection.ALL);
            Vcpu vcpu = vm.createVcpu();
            LongMode.ring3(vcpu, guest, "u_sum");
            vcpu.set(Register.RDI, 3);
            assertEquals(6, assertInstanceOf(VmExit.Mmio.class, vcpu.run()).value());
        }
    }

    private static long residentKib() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    @Test
    @RequiresKvm
    void aVcpuWhoseThreadDiedIsReclaimedWithItsVm() throws Exception {
        TestGuest guest = TestGuest.load("long");
        long descriptors = count(Path.of("/proc/self/fd"));
        try (VirtualMachine vm = VirtualMachine.create(); GuestMemory ram = GuestMemory.allocate(Fixture.RAM_BYTES)) {
            guest.loadInto(ram.segment());
            vm.map(0, ram, Protection.ALL);
            Thread owner = Thread.ofPlatform().start(() -> {
                Vcpu vcpu = vm.createVcpu();   // and the thread ends without destroying it
                LongMode.ring3(vcpu, guest, "u_sum");
                vcpu.set(Register.RDI, 3);
                vcpu.run();
            });
            owner.join();
            Vcpu orphan = vm.vcpus().getFirst();
            orphan.interrupt();   // its thread is gone: the kick finds nobody, harmlessly
            assertTrue(count(Path.of("/proc/self/fd")) > descriptors, "the vCPU's descriptor is still open");
        }
        assertEquals(descriptors, count(Path.of("/proc/self/fd")), "closing the VM freed the orphaned vCPU");
    }

    private static long count(Path directory) throws IOException {
        try (Stream<Path> entries = Files.list(directory)) {
            return entries.count();
        }
    }

    @Test
    void anUnprivilegedUserIsToldHowToGetAccess() throws Exception {
        assumeTrue(Files.exists(Path.of("/dev/kvm")), "no /dev/kvm here");
        assumeTrue("root".equals(System.getProperty("user.name")), "needs root to run the check as another user");
        Path setpriv = Path.of("/usr/bin/setpriv");
        assumeTrue(Files.isExecutable(setpriv), "setpriv (util-linux) is not installed");
        assumeTrue((Files.getPosixFilePermissions(Path.of("/dev/kvm")).stream()
                .noneMatch(p -> p.name().startsWith("OTHERS"))), "/dev/kvm is open to everyone here");
        String classes = Path.of("target/classes").toAbsolutePath() + ":" + Path.of("target/test-classes").toAbsolutePath();
        Process process = new ProcessBuilder(setpriv.toString(), "--reuid=65534", "--regid=65534", "--clear-groups",
                ProcessHandle.current().info().command().orElseThrow(), "--enable-native-access=ALL-UNNAMED",
                "-cp", classes, SupportProbe.class.getName()).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, process.exitValue(), output);
        assertTrue(output.startsWith("HV_DENIED: no permission to open /dev/kvm"), output);
        assertTrue(output.contains("usermod -aG kvm"), "says how to fix it: " + output);
    }
}
