package dev.jhv.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import dev.jhv.RequiresKvm;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@RequiresKvm
class InfoCommandTest {
    private static String run(String... arguments) {
        PrintStream original = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, new CommandLine(new Main()).execute(arguments), "exit status 0: guests can run");
        } finally {
            System.setOut(original);
        }
        return captured.toString(StandardCharsets.UTF_8);
    }

    @Test
    void reportsSupportCapabilitiesAndExits() {
        String text = run("info");
        assertTrue(text.startsWith("supported:    yes"), text);
        assertTrue(text.contains("HV_VMX_CAP_PROCBASED         0x9100008c91000008"), text);
        assertTrue(text.contains("30 IO"), text);
    }

    @Test
    void jsonForScripts() {
        String json = run("info", "--json");
        assertTrue(json.startsWith("{") && json.trim().endsWith("}"), json);
        assertTrue(json.contains("\"supported\": true"), json);
        assertTrue(json.contains("\"HV_VMX_CAP_PINBASED\": \"0x0000002900000029\""), json);
    }
}
