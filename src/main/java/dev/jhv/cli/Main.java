package dev.jhv.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code jhv} command. */
@Command(name = "jhv", mixinStandardHelpOptions = true, version = "jhv 0.1.0",
        description = "Apple's Hypervisor framework (Intel/VMX) for Java, on Linux KVM.",
        subcommands = {InfoCommand.class, DemoCommand.class, RunCommand.class, BenchCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
