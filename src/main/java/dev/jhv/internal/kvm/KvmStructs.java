package dev.jhv.internal.kvm;

import java.lang.foreign.GroupLayout;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.StructLayout;
import java.util.Arrays;
import java.util.Map;

import static java.lang.foreign.MemoryLayout.paddingLayout;
import static java.lang.foreign.MemoryLayout.sequenceLayout;
import static java.lang.foreign.MemoryLayout.structLayout;
import static java.lang.foreign.MemoryLayout.unionLayout;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The KVM structures of {@code <linux/kvm.h>} for x86-64, declared once. Field names are the
 * kernel's; offsets used by the rest of jhv are derived from these layouts, and a test compares
 * every size and offset with what the installed kernel headers say.
 */
public final class KvmStructs {
    private KvmStructs() {}

    static final long SYNC_REGS_SIZE_BYTES = 2048;
    static final long EXIT_UNION_BYTES = 256;

    public static final StructLayout KVM_REGS = structLayout(
            JAVA_LONG.withName("rax"), JAVA_LONG.withName("rbx"), JAVA_LONG.withName("rcx"), JAVA_LONG.withName("rdx"),
            JAVA_LONG.withName("rsi"), JAVA_LONG.withName("rdi"), JAVA_LONG.withName("rsp"), JAVA_LONG.withName("rbp"),
            JAVA_LONG.withName("r8"), JAVA_LONG.withName("r9"), JAVA_LONG.withName("r10"), JAVA_LONG.withName("r11"),
            JAVA_LONG.withName("r12"), JAVA_LONG.withName("r13"), JAVA_LONG.withName("r14"), JAVA_LONG.withName("r15"),
            JAVA_LONG.withName("rip"), JAVA_LONG.withName("rflags")).withName("kvm_regs");

    public static final StructLayout KVM_SEGMENT = structLayout(
            JAVA_LONG.withName("base"), JAVA_INT.withName("limit"), JAVA_SHORT.withName("selector"),
            JAVA_BYTE.withName("type"), JAVA_BYTE.withName("present"), JAVA_BYTE.withName("dpl"),
            JAVA_BYTE.withName("db"), JAVA_BYTE.withName("s"), JAVA_BYTE.withName("l"), JAVA_BYTE.withName("g"),
            JAVA_BYTE.withName("avl"), JAVA_BYTE.withName("unusable"), JAVA_BYTE.withName("padding"))
            .withName("kvm_segment");

    public static final StructLayout KVM_DTABLE = structLayout(
            JAVA_LONG.withName("base"), JAVA_SHORT.withName("limit"),
            sequenceLayout(3, JAVA_SHORT).withName("padding")).withName("kvm_dtable");

    public static final StructLayout KVM_SREGS = structLayout(
            KVM_SEGMENT.withName("cs"), KVM_SEGMENT.withName("ds"), KVM_SEGMENT.withName("es"),
            KVM_SEGMENT.withName("fs"), KVM_SEGMENT.withName("gs"), KVM_SEGMENT.withName("ss"),
            KVM_SEGMENT.withName("tr"), KVM_SEGMENT.withName("ldt"),
            KVM_DTABLE.withName("gdt"), KVM_DTABLE.withName("idt"),
            JAVA_LONG.withName("cr0"), JAVA_LONG.withName("cr2"), JAVA_LONG.withName("cr3"), JAVA_LONG.withName("cr4"),
            JAVA_LONG.withName("cr8"), JAVA_LONG.withName("efer"), JAVA_LONG.withName("apic_base"),
            sequenceLayout(4, JAVA_LONG).withName("interrupt_bitmap")).withName("kvm_sregs");

    public static final StructLayout KVM_VCPU_EVENTS = structLayout(
            structLayout(JAVA_BYTE.withName("injected"), JAVA_BYTE.withName("nr"),
                    JAVA_BYTE.withName("has_error_code"), JAVA_BYTE.withName("pending"),
                    JAVA_INT.withName("error_code")).withName("exception"),
            structLayout(JAVA_BYTE.withName("injected"), JAVA_BYTE.withName("nr"), JAVA_BYTE.withName("soft"),
                    JAVA_BYTE.withName("shadow")).withName("interrupt"),
            structLayout(JAVA_BYTE.withName("injected"), JAVA_BYTE.withName("pending"), JAVA_BYTE.withName("masked"),
                    JAVA_BYTE.withName("pad")).withName("nmi"),
            JAVA_INT.withName("sipi_vector"), JAVA_INT.withName("flags"),
            structLayout(JAVA_BYTE.withName("smm"), JAVA_BYTE.withName("pending"),
                    JAVA_BYTE.withName("smm_inside_nmi"), JAVA_BYTE.withName("latched_init")).withName("smi"),
            structLayout(JAVA_BYTE.withName("pending")).withName("triple_fault"),
            sequenceLayout(26, JAVA_BYTE).withName("reserved"),
            JAVA_BYTE.withName("exception_has_payload"),
            JAVA_LONG.withName("exception_payload")).withName("kvm_vcpu_events");

    public static final StructLayout KVM_SYNC_REGS = structLayout(
            KVM_REGS.withName("regs"), KVM_SREGS.withName("sregs"), KVM_VCPU_EVENTS.withName("events"));

    public static final StructLayout KVM_RUN = structLayout(
            JAVA_BYTE.withName("request_interrupt_window"), JAVA_BYTE.withName("immediate_exit"),
            sequenceLayout(6, JAVA_BYTE).withName("padding1"),
            JAVA_INT.withName("exit_reason"), JAVA_BYTE.withName("ready_for_interrupt_injection"),
            JAVA_BYTE.withName("if_flag"), JAVA_SHORT.withName("flags"),
            JAVA_LONG.withName("cr8"), JAVA_LONG.withName("apic_base"),
            unionLayout(
                    structLayout(JAVA_LONG.withName("hardware_exit_reason")).withName("hw"),
                    structLayout(JAVA_LONG.withName("hardware_entry_failure_reason"), JAVA_INT.withName("cpu"),
                            paddingLayout(4)).withName("fail_entry"),
                    structLayout(JAVA_INT.withName("exception"), JAVA_INT.withName("error_code")).withName("ex"),
                    structLayout(JAVA_BYTE.withName("direction"), JAVA_BYTE.withName("size"),
                            JAVA_SHORT.withName("port"), JAVA_INT.withName("count"),
                            JAVA_LONG.withName("data_offset")).withName("io"),
                    structLayout(JAVA_INT.withName("exception"), JAVA_INT.withName("pad"), JAVA_LONG.withName("pc"),
                            JAVA_LONG.withName("dr6"), JAVA_LONG.withName("dr7")).withName("debug"),
                    structLayout(JAVA_LONG.withName("phys_addr"), sequenceLayout(8, JAVA_BYTE).withName("data"),
                            JAVA_INT.withName("len"), JAVA_BYTE.withName("is_write"), paddingLayout(3))
                            .withName("mmio"),
                    structLayout(JAVA_INT.withName("suberror"), JAVA_INT.withName("ndata"),
                            sequenceLayout(16, JAVA_LONG).withName("data")).withName("internal"),
                    structLayout(JAVA_INT.withName("type"), JAVA_INT.withName("ndata"),
                            sequenceLayout(16, JAVA_LONG).withName("data")).withName("system_event"),
                    structLayout(JAVA_BYTE.withName("error"), sequenceLayout(7, JAVA_BYTE).withName("pad"),
                            JAVA_INT.withName("reason"), JAVA_INT.withName("index"), JAVA_LONG.withName("data"))
                            .withName("msr"),
                    sequenceLayout(EXIT_UNION_BYTES, JAVA_BYTE).withName("padding")).withName("exit"),
            JAVA_LONG.withName("kvm_valid_regs"), JAVA_LONG.withName("kvm_dirty_regs"),
            unionLayout(KVM_SYNC_REGS.withName("regs"),
                    sequenceLayout(SYNC_REGS_SIZE_BYTES, JAVA_BYTE).withName("padding")).withName("s"))
            .withName("kvm_run");

    public static final StructLayout KVM_XSAVE = structLayout(
            sequenceLayout(1024, JAVA_INT).withName("region")).withName("kvm_xsave");

    public static final StructLayout KVM_XCR = structLayout(
            JAVA_INT.withName("xcr"), JAVA_INT.withName("reserved"), JAVA_LONG.withName("value")).withName("kvm_xcr");

    public static final StructLayout KVM_XCRS = structLayout(
            JAVA_INT.withName("nr_xcrs"), JAVA_INT.withName("flags"),
            sequenceLayout(16, KVM_XCR).withName("xcrs"),
            sequenceLayout(16, JAVA_LONG).withName("padding")).withName("kvm_xcrs");

    public static final StructLayout KVM_MSR_ENTRY = structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("reserved"), JAVA_LONG.withName("data"))
            .withName("kvm_msr_entry");

    /** Header of {@code kvm_msrs}; {@code entries} follow it. */
    public static final StructLayout KVM_MSRS = structLayout(
            JAVA_INT.withName("nmsrs"), JAVA_INT.withName("pad"),
            sequenceLayout(0, KVM_MSR_ENTRY).withName("entries")).withName("kvm_msrs");

    /** Header of {@code kvm_msr_list}; {@code indices} follow it. */
    public static final StructLayout KVM_MSR_LIST = structLayout(
            JAVA_INT.withName("nmsrs"), sequenceLayout(0, JAVA_INT).withName("indices")).withName("kvm_msr_list");

    public static final StructLayout KVM_CPUID_ENTRY2 = structLayout(
            JAVA_INT.withName("function"), JAVA_INT.withName("index"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("eax"), JAVA_INT.withName("ebx"), JAVA_INT.withName("ecx"), JAVA_INT.withName("edx"),
            sequenceLayout(3, JAVA_INT).withName("padding")).withName("kvm_cpuid_entry2");

    /** Header of {@code kvm_cpuid2}; {@code entries} follow it. */
    public static final StructLayout KVM_CPUID2 = structLayout(
            JAVA_INT.withName("nent"), JAVA_INT.withName("padding"),
            sequenceLayout(0, KVM_CPUID_ENTRY2).withName("entries")).withName("kvm_cpuid2");

    public static final StructLayout KVM_USERSPACE_MEMORY_REGION = structLayout(
            JAVA_INT.withName("slot"), JAVA_INT.withName("flags"), JAVA_LONG.withName("guest_phys_addr"),
            JAVA_LONG.withName("memory_size"), JAVA_LONG.withName("userspace_addr"))
            .withName("kvm_userspace_memory_region");

    public static final StructLayout KVM_MSR_FILTER_RANGE = structLayout(
            JAVA_INT.withName("flags"), JAVA_INT.withName("nmsrs"), JAVA_INT.withName("base"), paddingLayout(4),
            JAVA_LONG.withName("bitmap")).withName("kvm_msr_filter_range");

    public static final int KVM_MSR_FILTER_MAX_RANGES = 16;

    public static final StructLayout KVM_MSR_FILTER = structLayout(
            JAVA_INT.withName("flags"), paddingLayout(4),
            sequenceLayout(KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_RANGE).withName("ranges"))
            .withName("kvm_msr_filter");

    public static final StructLayout KVM_GUEST_DEBUG = structLayout(
            JAVA_INT.withName("control"), JAVA_INT.withName("pad"),
            sequenceLayout(8, JAVA_LONG).withName("debugreg")).withName("kvm_guest_debug");

    public static final StructLayout KVM_TRANSLATION = structLayout(
            JAVA_LONG.withName("linear_address"), JAVA_LONG.withName("physical_address"),
            JAVA_BYTE.withName("valid"), JAVA_BYTE.withName("writeable"), JAVA_BYTE.withName("usermode"),
            sequenceLayout(5, JAVA_BYTE).withName("pad")).withName("kvm_translation");

    public static final StructLayout KVM_DIRTY_LOG = structLayout(
            JAVA_INT.withName("slot"), JAVA_INT.withName("padding1"), JAVA_LONG.withName("dirty_bitmap"))
            .withName("kvm_dirty_log");

    public static final StructLayout KVM_DEBUGREGS = structLayout(
            sequenceLayout(4, JAVA_LONG).withName("db"), JAVA_LONG.withName("dr6"), JAVA_LONG.withName("dr7"),
            JAVA_LONG.withName("flags"), sequenceLayout(9, JAVA_LONG).withName("reserved")).withName("kvm_debugregs");

    public static final StructLayout KVM_ENABLE_CAP = structLayout(
            JAVA_INT.withName("cap"), JAVA_INT.withName("flags"), sequenceLayout(4, JAVA_LONG).withName("args"),
            sequenceLayout(64, JAVA_BYTE).withName("pad")).withName("kvm_enable_cap");

    /** Header of {@code kvm_signal_mask}; the kernel sigset follows it. */
    public static final StructLayout KVM_SIGNAL_MASK = structLayout(
            JAVA_INT.withName("len"), sequenceLayout(0, JAVA_BYTE).withName("sigset")).withName("kvm_signal_mask");

    public static final StructLayout KVM_INTERRUPT = structLayout(JAVA_INT.withName("irq")).withName("kvm_interrupt");

    /** Every structure above by its kernel name, for the layout test. */
    public static final Map<String, GroupLayout> ALL = byName(KVM_RUN, KVM_REGS, KVM_SEGMENT, KVM_DTABLE, KVM_SREGS,
            KVM_VCPU_EVENTS, KVM_XSAVE, KVM_XCRS, KVM_XCR, KVM_MSRS, KVM_MSR_ENTRY, KVM_MSR_LIST, KVM_CPUID2,
            KVM_CPUID_ENTRY2, KVM_USERSPACE_MEMORY_REGION, KVM_MSR_FILTER, KVM_MSR_FILTER_RANGE, KVM_GUEST_DEBUG,
            KVM_TRANSLATION, KVM_DIRTY_LOG, KVM_DEBUGREGS, KVM_ENABLE_CAP, KVM_SIGNAL_MASK, KVM_INTERRUPT);

    private static Map<String, GroupLayout> byName(GroupLayout... layouts) {
        return Map.copyOf(Arrays.stream(layouts).collect(
                java.util.stream.Collectors.toMap(l -> l.name().orElseThrow(), l -> l)));
    }

    /** Byte offset of a dotted field path such as {@code "exit.io.port"} inside {@code layout}. */
    public static long offset(MemoryLayout layout, String dottedPath) {
        PathElement[] path = Arrays.stream(dottedPath.split("\\."))
                .map(PathElement::groupElement).toArray(PathElement[]::new);
        return layout.byteOffset(path);
    }
}
