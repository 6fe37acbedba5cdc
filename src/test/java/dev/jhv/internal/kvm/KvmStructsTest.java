package dev.jhv.internal.kvm;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.GroupLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every size, field offset and ioctl number jhv declares, against the kernel headers: a small C
 * program prints them as the installed {@code <linux/kvm.h>} defines them (when gcc is there),
 * else the numbers recorded from those headers are used.
 */
class KvmStructsTest {
    @Test
    void layoutsAndIoctlNumbersMatchTheKernelHeaders() throws Exception {
        List<String> facts = headerFacts();
        assertTrue(facts.size() > 150, "the C program printed " + facts.size() + " facts");
        int checked = 0;
        for (String fact : facts) {
            String[] parts = fact.split(" ");
            switch (parts[0]) {
                case "size" -> assertEquals(Long.parseLong(parts[2]), layout(parts[1]).byteSize(), "sizeof " + parts[1]);
                case "offset" -> assertEquals(Long.parseLong(parts[3]), KvmStructs.offset(layout(parts[1]), parts[2]),
                        "offsetof " + parts[1] + "." + parts[2]);
                case "ioctl" -> assertEquals(Long.parseUnsignedLong(parts[2]), KvmIoctl.valueOf(parts[1]).number, parts[1]);
                default -> throw new AssertionError("unknown line " + fact);
            }
            checked++;
        }
        assertEquals(KvmIoctl.values().length, facts.stream().filter(f -> f.startsWith("ioctl ")).count(),
                "every ioctl jhv uses is checked");
        assertEquals(KvmStructs.ALL.size(), facts.stream().filter(f -> f.startsWith("size ")).count(),
                "every structure jhv declares is checked");
        assertTrue(checked == facts.size());
    }

    @Test
    void recordedNumbersAreTheHeadersOwn() throws Exception {
        List<String> facts = compiledFacts();
        org.junit.jupiter.api.Assumptions.assumeTrue(facts != null, "gcc or the KVM headers are not installed");
        assertEquals(recorded(), facts, "kvm-layouts.recorded.txt is out of date: regenerate it from kvm_layouts.c");
    }

    private static List<String> recorded() throws IOException {
        try (InputStream in = KvmStructsTest.class.getResourceAsStream("kvm-layouts.recorded.txt")) {
            return List.of(new String(in.readAllBytes(), StandardCharsets.US_ASCII).strip().split("\n"));
        }
    }

    private static GroupLayout layout(String name) {
        GroupLayout layout = KvmStructs.ALL.get(name);
        assertNotNull(layout, "jhv declares no " + name);
        return layout;
    }

    private static List<String> headerFacts() throws IOException, InterruptedException {
        List<String> compiled = compiledFacts();
        return compiled != null ? compiled : recorded();
    }

    /** What the C program prints, or null where it cannot be built here. */
    private static List<String> compiledFacts() throws IOException, InterruptedException {
        Path source = Path.of(System.getProperty("jhv.test.c", "src/test/c"), "kvm_layouts.c");
        if (Files.exists(source) && Files.exists(Path.of("/usr/include/linux/kvm.h")) && onPath("gcc")) {
            Path binary = Files.createTempFile("kvm_layouts", "");
            try {
                run(List.of("gcc", "-o", binary.toString(), source.toString()));
                return run(List.of(binary.toString()));
            } finally {
                Files.deleteIfExists(binary);
            }
        }
        return null;
    }

    private static boolean onPath(String tool) {
        for (String directory : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(directory, tool))) {
                return true;
            }
        }
        return false;
    }

    private static List<String> run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, process.exitValue(), String.join(" ", command) + ":\n" + output);
        List<String> lines = new ArrayList<>();
        for (String line : output.split("\n")) {
            if (!line.isBlank()) {
                lines.add(line.trim());
            }
        }
        return lines;
    }
}
