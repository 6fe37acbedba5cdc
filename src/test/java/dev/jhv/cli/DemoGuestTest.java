package dev.jhv.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import dev.jhv.RequiresKvm;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@RequiresKvm
class DemoGuestTest {
    @Test
    void builtInGuestBootsWorksAndHalts() {
        ByteArrayOutputStream serial = new ByteArrayOutputStream();
        DemoGuest.Report report = new DemoGuest(new PrintStream(serial, true, StandardCharsets.US_ASCII)).run();
        assertTrue(report.succeeded(), report.describe());
        assertEquals(148933, report.reports().get(0), "primes below 2000000");
        String output = serial.toString(StandardCharsets.US_ASCII);
        assertTrue(output.contains("real mode") && output.contains("long mode, ring 0")
                && output.contains("interrupt 0x20 handled in ring 0") && output.endsWith("halted\r\n"), output);
        assertEquals(1, report.exits().get("HLT"));
        assertEquals(4, report.exits().get("MMIO"), "three reports and one device read");
        assertTrue(report.ringThreeInstructions() > 10_000_000, "the sieve ran millions of instructions");
    }
}
