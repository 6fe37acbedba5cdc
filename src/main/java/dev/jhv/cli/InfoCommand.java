package dev.jhv.cli;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import dev.jhv.Hypervisor;
import dev.jhv.vmx.VmxCapabilities;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import static dev.jhv.hv.Hv.*;

/** {@code jhv info}: can this machine run guests, and with what. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = {"Say whether this machine can run guests (the analog of sysctl kern.hv_support), and why not;"
                + " the backend, KVM's limits, the VMX capabilities jhv reports and the exit reasons it can deliver.",
            "Exit status: 0 when guests can run, 1 when not."})
final class InfoCommand implements Callable<Integer> {
    @Option(names = "--json", description = "Print JSON, for scripts.")
    boolean json;

    /** Capability names and ids, in Apple's order. */
    private static final Map<String, Integer> CAPABILITIES = new LinkedHashMap<>();

    static {
        String[] names = {"PINBASED", "PROCBASED", "PROCBASED2", "ENTRY", "EXIT", "BASIC", "TRUE_PINBASED",
            "TRUE_PROCBASED", "TRUE_ENTRY", "TRUE_EXIT", "MISC", "CR0_FIXED0", "CR0_FIXED1", "CR4_FIXED0", "CR4_FIXED1",
            "VMCS_ENUM", "EPT_VPID_CAP"};
        for (int i = 0; i < names.length; i++) {
            CAPABILITIES.put("HV_VMX_CAP_" + names[i], i);
        }
        CAPABILITIES.put("HV_VMX_CAP_PREEMPTION_TIMER", HV_VMX_CAP_PREEMPTION_TIMER);
    }

    /** The VMX exit reasons jhv delivers on this backend, with how. */
    private static Map<String, String> exits(Hypervisor.Backend backend) {
        Map<String, String> exits = new LinkedHashMap<>();
        exits.put("0 EXC_NMI", backend == Hypervisor.Backend.PVM ? "#BP in ring 0 only (guest #DB stays in the guest)"
                : "#BP and #DB when the exception bitmap asks");
        exits.put("1 IRQ", "hv_vcpu_interrupt kicks");
        exits.put("2 TRIPLE_FAULT", "yes");
        exits.put("7 IRQ_WND", "with CPU_BASED_IRQ_WND");
        exits.put("12 HLT", "with CPU_BASED_HLT");
        exits.put("30 IO", "every IN/OUT, string forms once per instruction");
        exits.put("31 RDMSR, 32 WRMSR", "MSRs not made native");
        exits.put("0x80000021 VMENTRY_GUEST", "invalid guest state found by jhv's entry checks");
        exits.put("44 APIC_ACCESS", "after hv_vmx_vcpu_set_apic_address");
        exits.put("48 EPT_VIOLATION", "unmapped, NONE, and writes to read-only memory (no fetch violations)");
        exits.put("52 VMX_TIMER_EXPIRED", "hv_vcpu_run_until deadlines");
        exits.put("10 CPUID, 28 MOV_CR, 55 XSETBV", "never: KVM handles them (CPUID answers come from a CPUID table)");
        return exits;
    }

    @Override
    public Integer call() {
        Hypervisor.Support support = Hypervisor.support();
        Map<String, String> exits = exits(support.backend());
        if (json) {
            printJson(support, exits);
        } else {
            System.out.println("supported:    " + (support.available() ? "yes" : "no (" + support.code().appleName() + ")"));
            System.out.println("reason:       " + support.reason());
            System.out.println("backend:      " + support.backend().description());
            if (support.available()) {
                System.out.println("KVM API:      " + support.apiVersion());
                System.out.println("max vCPUs:    " + support.maxVcpus());
                System.out.println("memory slots: " + support.memorySlots());
                System.out.println("\nVMX capabilities (hv_vmx_read_capability):");
                CAPABILITIES.forEach((name, id) -> System.out.printf(Locale.ROOT, "  %-28s 0x%016x%n", name,
                        VmxCapabilities.read(id)));
                System.out.println("\nexit reasons delivered:");
                exits.forEach((reason, how) -> System.out.printf(Locale.ROOT, "  %-30s %s%n", reason, how));
            }
        }
        return support.available() ? 0 : 1;
    }

    private static void printJson(Hypervisor.Support support, Map<String, String> exits) {
        StringBuilder out = new StringBuilder("{\n");
        out.append("  \"supported\": ").append(support.available()).append(",\n");
        out.append("  \"code\": \"").append(support.code().appleName()).append("\",\n");
        out.append("  \"reason\": \"").append(escape(support.reason())).append("\",\n");
        out.append("  \"backend\": \"").append(support.backend().name()).append("\",\n");
        out.append("  \"api_version\": ").append(support.apiVersion()).append(",\n");
        out.append("  \"max_vcpus\": ").append(support.maxVcpus()).append(",\n");
        out.append("  \"memory_slots\": ").append(support.memorySlots()).append(",\n");
        out.append("  \"vmx_capabilities\": {");
        String separator = "\n";
        for (Map.Entry<String, Integer> capability : CAPABILITIES.entrySet()) {
            out.append(separator).append(String.format(Locale.ROOT, "    \"%s\": \"0x%016x\"", capability.getKey(),
                    VmxCapabilities.read(capability.getValue())));
            separator = ",\n";
        }
        out.append("\n  },\n  \"exits\": {");
        separator = "\n";
        for (Map.Entry<String, String> exit : exits.entrySet()) {
            out.append(separator).append("    \"").append(exit.getKey()).append("\": \"").append(escape(exit.getValue()))
                    .append('"');
            separator = ",\n";
        }
        out.append("\n  }\n}");
        System.out.println(out);
    }

    private static String escape(String text) {
        return text.replace("\\", "\\\\").replace("\"", "\\\"");
    }
}
