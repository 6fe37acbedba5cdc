package dev.jhv.cli;

import java.util.concurrent.Callable;

import dev.jhv.HvException;
import picocli.CommandLine.Command;

/** {@code jhv demo}: boots the built-in guest and reports what happened. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Boot the built-in guest: real mode to long mode, serial output, ring-3 work, MMIO, an injected"
                + " interrupt, then halt; then report what happened.")
final class DemoCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        try {
            DemoGuest.Report report = new DemoGuest(System.out).run();
            System.out.println();
            System.out.print(report.describe());
            return report.succeeded() ? 0 : 1;
        } catch (HvException e) {
            System.err.println("jhv demo: " + e.getMessage() + " (" + e.code().appleName() + ")");
            return 2;
        }
    }
}
