package dev.jhv.cli;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import dev.jhv.RequiresKvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code jhv run} as a separate process, checked by its console output and exit status. */
@RequiresKvm
class RunCommandTest {
    record Outcome(int status, String stdout, String stderr) {}

    /** Runs {@code jhv run ARGS} in a new JVM, with the classes this build made. */
    static Outcome jhvRun(List<String> arguments) throws Exception {
        return jhvRun(arguments, "");
    }

    static Process start(List<String> arguments) throws Exception {
        List<String> classPath = new ArrayList<>(List.of(Path.of("target/classes").toAbsolutePath().toString()));
        for (String entry : System.getProperty("jdk.module.path", "").split(File.pathSeparator)) {
            if (entry.contains("picocli")) {
                classPath.add(entry);
            }
        }
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-cp", String.join(File.pathSeparator, classPath),
                Main.class.getName(), "run"));
        command.addAll(arguments);
        return new ProcessBuilder(command).start();
    }

    /** Runs {@code jhv run ARGS} with {@code input} on its standard input. */
    static Outcome jhvRun(List<String> arguments, String input) throws Exception {
        Process process = start(arguments);
        process.getOutputStream().write(input.getBytes(StandardCharsets.UTF_8));
        process.getOutputStream().close();
        byte[] out = process.getInputStream().readAllBytes();
        byte[] err = process.getErrorStream().readAllBytes();
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "jhv run finished");
        return new Outcome(process.exitValue(), new String(out, StandardCharsets.UTF_8),
                new String(err, StandardCharsets.UTF_8));
    }

    private static String kernel(String name) {
        return Path.of("target/test-classes/dev/jhv/testkernels", name).toAbsolutePath().toString();
    }

    @Test
    void multibootKernelSeesItsCommandLineMemoryModulesAndFwCfg(@TempDir Path directory) throws Exception {
        Path module = directory.resolve("initrd.txt");
        Files.writeString(module, "module contents\nsecond line\n");
        String kernel = kernel("mbtest.elf");
        Outcome outcome = jhvRun(List.of(kernel, "--mem", "64M", "--cmdline", "console=ttyS0 quiet",
                "--module", module + " initrd-arg"));
        assertEquals(85, outcome.status(), "isa-debug-exit with 42: " + outcome.stderr());
        assertEquals("""
                mbtest: hello from protected mode
                cmdline: %s console=ttyS0 quiet
                mem_upper KiB: 64512
                mmap entries: 4
                modules: 1 %s initrd-arg: module contents
                fw_cfg: QEMU 64 MiB
                mbtest: exit 42
                """.formatted(kernel, module), outcome.stdout());
    }

    @Test
    void flatImagesStartInTheModeAsked(@TempDir Path directory) throws Exception {
        Path real = directory.resolve("real.bin");
        // mov al, 'R'; out 0x3f8 via dx; mov al, 3; out 0xf4, al
        Files.write(real, bytes(0xb0, 'R', 0xba, 0xf8, 0x03, 0xee, 0xb0, 0x03, 0xe6, 0xf4));
        Outcome outcome = jhvRun(List.of(real.toString(), "--mode", "REAL"));
        assertEquals("R", outcome.stdout());
        assertEquals(7, outcome.status());

        Path long64 = directory.resolve("long.bin");
        // mov al, 'L'; mov dx, 0x3f8; out dx, al; mov rax, [0x100000] (its own first bytes); out 0xf4, al
        Files.write(long64, bytes(0xb0, 'L', 0x66, 0xba, 0xf8, 0x03, 0xee, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x10,
                0x00, 0xe6, 0xf4));
        outcome = jhvRun(List.of(long64.toString(), "--mode", "LONG"));
        assertEquals("L", outcome.stdout(), outcome.stderr());
        assertEquals((0xb0 << 1 | 1) & 0xff, outcome.status(),
                "exit code 0xb0, the image's first byte read back from memory (a process status keeps 8 bits)");
    }

    @Test
    void elf64KernelReadsTheSerialInputAndTheTimer() throws Exception {
        Outcome outcome = jhvRun(List.of(kernel("echo64.elf")), "x");
        assertEquals("echo64: X\n", outcome.stdout(), outcome.stderr());
        assertEquals(15, outcome.status(), "code 7: the PIT counter moved");
    }

    @Test
    void ctrlCStopsTheGuestCleanly(@TempDir Path directory) throws Exception {
        Path spin = directory.resolve("spin.bin");
        Files.write(spin, bytes(0xeb, 0xfe));   // jmp $
        Process process = start(List.of(spin.toString(), "--mode", "REAL"));
        Thread.sleep(1500);   // the JVM is up and the guest spinning
        new ProcessBuilder("kill", "-INT", Long.toString(process.pid())).start().waitFor();
        assertTrue(process.waitFor(30, TimeUnit.SECONDS), "stopped");
        assertEquals(130, process.exitValue());
    }

    @Test
    void aHungGuestEndsWithTheTimeoutStatus(@TempDir Path directory) throws Exception {
        Path spin = directory.resolve("spin.bin");
        Files.write(spin, bytes(0xeb, 0xfe));   // jmp $
        long start = System.nanoTime();
        Outcome outcome = jhvRun(List.of(spin.toString(), "--mode", "REAL", "--timeout", "0.5"));
        assertEquals(124, outcome.status());
        assertTrue(outcome.stderr().contains("timed out"), outcome.stderr());
        assertTrue(System.nanoTime() - start < 30_000_000_000L);
    }

    @Test
    void traceLogsEveryExit(@TempDir Path directory) throws Exception {
        Path real = directory.resolve("real.bin");
        Files.write(real, bytes(0xb0, 'R', 0xba, 0xf8, 0x03, 0xee, 0xb0, 0x03, 0xe6, 0xf4));
        Outcome outcome = jhvRun(List.of(real.toString(), "--mode", "REAL", "--trace"));
        assertTrue(outcome.stderr().contains("OUT port 0x3f8 size 1 value 0x52"), outcome.stderr());
        assertTrue(outcome.stderr().contains("OUT port 0xf4 size 1 value 0x3"), outcome.stderr());
    }

    private static byte[] bytes(int... values) {
        byte[] bytes = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            bytes[i] = (byte) values[i];
        }
        return bytes;
    }
}
