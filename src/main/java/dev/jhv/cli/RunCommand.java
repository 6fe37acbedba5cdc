package dev.jhv.cli;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import dev.jhv.HvException;
import dev.jhv.cli.machine.Machine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code jhv run}: boots a Multiboot kernel or a flat image with a serial console. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Boot a Multiboot (v1) kernel, ELF32 or ELF64, as QEMU's -kernel does, or a flat image, with COM1"
                + " on the terminal.",
            "Devices as QEMU has them: a 16550 UART at 0x3f8, isa-debug-exit at 0xf4 (a write of CODE ends the run with"
                + " status (CODE << 1) | 1), fw_cfg at 0x510/0x511, the PIC and PIT ports, and a local-APIC page that"
                + " reads as zeros.",
            "Exit status: the debug-exit status; 0 when the guest halts; 2 on a triple fault; 4 when the guest cannot"
                + " go on; 124 on --timeout; 130 on Ctrl-C."})
final class RunCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IMAGE", description = "The kernel or flat image.")
    Path image;

    @Option(names = "--mem", paramLabel = "SIZE", description = "Guest RAM, e.g. 64M or 1G (default: ${DEFAULT-VALUE}).")
    String memory = "128M";

    @Option(names = "--cmdline", paramLabel = "STR", description = "The kernel command line.")
    String commandLine = "";

    @Option(names = "--module", paramLabel = "FILE", description = "A Multiboot module (repeatable; \"FILE args\" passes"
            + " a string with it).")
    List<String> modules = new ArrayList<>();

    @Option(names = "--timeout", paramLabel = "S", description = "Stop the guest after S seconds (status 124).")
    double timeout;

    @Option(names = "--trace", description = "Log every exit (reason, RIP, port or address, data) to stderr.")
    boolean trace;

    @Option(names = "--mode", paramLabel = "MODE", description = "Start a flat image in REAL, PROTECTED or LONG mode"
            + " (long mode: ring 0, the first 4 GiB identity-mapped).")
    Machine.Mode mode;

    @Option(names = "--load", paramLabel = "ADDR", description = "Where a flat image goes (default: 0x7c00 in real mode,"
            + " else 0x100000).")
    String load;

    @Option(names = "--entry", paramLabel = "ADDR", description = "Where a flat image starts (default: its load address).")
    String entry;

    @Override
    public Integer call() throws Exception {
        byte[] bytes = Files.readAllBytes(image);
        long ramBytes = size(memory);
        List<byte[]> moduleBytes = new ArrayList<>();
        List<String> moduleNames = new ArrayList<>();
        for (String module : modules) {
            String file = module.split(" ", 2)[0];
            moduleBytes.add(Files.readAllBytes(Path.of(file)));
            moduleNames.add(module);
        }
        PrintStream console = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true);
        try (Machine machine = new Machine(ramBytes, commandLine, console, System.in, trace ? System.err : null)) {
            if (mode == null) {
                // As GRUB and QEMU do, the kernel's own path comes first in its command line.
                String kernelLine = commandLine.isEmpty() ? image.toString() : image + " " + commandLine;
                machine.bootMultiboot(bytes, kernelLine, moduleBytes, moduleNames);
            } else {
                long loadAddress = load != null ? number(load) : mode == Machine.Mode.REAL ? 0x7c00 : 0x100000;
                machine.bootFlat(bytes, loadAddress, entry != null ? number(entry) : loadAddress, mode);
            }
            Thread stopper = new Thread(machine::stop, "jhv-ctrl-c");
            Runtime.getRuntime().addShutdownHook(stopper);
            int status = machine.run(timeout);
            try {
                Runtime.getRuntime().removeShutdownHook(stopper);
            } catch (IllegalStateException shuttingDown) {
                // Ctrl-C: the JVM is already stopping and will use its own status
            }
            console.flush();
            return status;
        } catch (IllegalArgumentException e) {
            System.err.println("jhv run: " + e.getMessage());
            return 1;
        } catch (HvException e) {
            System.err.println("jhv run: " + e.getMessage() + " (" + e.code().appleName() + ")");
            return 1;
        }
    }

    private static long size(String text) {
        String upper = text.trim().toUpperCase(Locale.ROOT);
        long unit = switch (upper.isEmpty() ? ' ' : upper.charAt(upper.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1;
        };
        long value = Long.parseLong(unit == 1 ? upper : upper.substring(0, upper.length() - 1)) * unit;
        if (value < 2 << 20 || value % 4096 != 0) {
            throw new IllegalArgumentException("--mem must be at least 2M and a multiple of 4K, not " + text);
        }
        return value;
    }

    private static long number(String text) {
        return Long.decode(text.trim());
    }
}
