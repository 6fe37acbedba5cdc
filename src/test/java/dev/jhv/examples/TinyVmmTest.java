package dev.jhv.examples;

import java.io.InputStream;

import dev.jhv.RequiresKvm;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The example VMM, written only against the hv_* facade, runs its guest to the end. */
@RequiresKvm
class TinyVmmTest {
    @Test
    void bootsTheGuestThroughIoMmioAndInjectedTimerInterrupts() throws Exception {
        byte[] image;
        try (InputStream in = TinyVmmTest.class.getResourceAsStream("/dev/jhv/testguests/tinyvmm.bin")) {
            image = in.readAllBytes();
        }
        TinyVmm.Result result = TinyVmm.run(image);
        assertEquals("tiny VMM guest: hello\ntiny VMM guest: three ticks\n", result.console());
        assertEquals(3, result.status(), "the guest counted three timer interrupts");
    }
}
