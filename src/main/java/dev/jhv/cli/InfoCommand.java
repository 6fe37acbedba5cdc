package dev.jhv.cli;

import java.util.concurrent.Callable;

import dev.jhv.Hypervisor;
import picocli.CommandLine.Command;

/** {@code jhv info}: can this machine run guests, and with what. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Say whether this machine can run guests (the analog of sysctl kern.hv_support), and why not.")
final class InfoCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        Hypervisor.Support support = Hypervisor.support();
        System.out.println("supported:    " + (support.available() ? "yes" : "no"));
        System.out.println("reason:       " + support.reason());
        System.out.println("backend:      " + support.backend().description());
        if (support.available()) {
            System.out.println("KVM API:      " + support.apiVersion());
            System.out.println("max vCPUs:    " + support.maxVcpus());
            System.out.println("memory slots: " + support.memorySlots());
        }
        return support.available() ? 0 : 1;
    }
}
