/*
 * Prints the size, field offsets and ioctl numbers of the KVM structures jhv declares in
 * dev.jhv.internal.kvm.KvmStructs, as the installed kernel headers define them. The layout test
 * compiles and runs this and compares every line with the Java declarations.
 * Output lines: "size STRUCT BYTES", "offset STRUCT JAVA.PATH BYTES", "ioctl NAME NUMBER".
 */
#include <stddef.h>
#include <stdio.h>
#include <linux/kvm.h>

#define SIZE(s) printf("size %s %zu\n", #s, sizeof(struct s))
#define OFF(s, path, field) printf("offset %s %s %zu\n", #s, path, offsetof(struct s, field))
#define IOCTL(n) printf("ioctl %s %lu\n", #n, (unsigned long)(n))

int main(void) {
    SIZE(kvm_run);
    OFF(kvm_run, "request_interrupt_window", request_interrupt_window);
    OFF(kvm_run, "immediate_exit", immediate_exit);
    OFF(kvm_run, "exit_reason", exit_reason);
    OFF(kvm_run, "ready_for_interrupt_injection", ready_for_interrupt_injection);
    OFF(kvm_run, "if_flag", if_flag);
    OFF(kvm_run, "flags", flags);
    OFF(kvm_run, "cr8", cr8);
    OFF(kvm_run, "apic_base", apic_base);
    OFF(kvm_run, "exit.hw.hardware_exit_reason", hw.hardware_exit_reason);
    OFF(kvm_run, "exit.fail_entry.hardware_entry_failure_reason", fail_entry.hardware_entry_failure_reason);
    OFF(kvm_run, "exit.fail_entry.cpu", fail_entry.cpu);
    OFF(kvm_run, "exit.ex.exception", ex.exception);
    OFF(kvm_run, "exit.ex.error_code", ex.error_code);
    OFF(kvm_run, "exit.io.direction", io.direction);
    OFF(kvm_run, "exit.io.size", io.size);
    OFF(kvm_run, "exit.io.port", io.port);
    OFF(kvm_run, "exit.io.count", io.count);
    OFF(kvm_run, "exit.io.data_offset", io.data_offset);
    OFF(kvm_run, "exit.debug.exception", debug.arch.exception);
    OFF(kvm_run, "exit.debug.pc", debug.arch.pc);
    OFF(kvm_run, "exit.debug.dr6", debug.arch.dr6);
    OFF(kvm_run, "exit.debug.dr7", debug.arch.dr7);
    OFF(kvm_run, "exit.mmio.phys_addr", mmio.phys_addr);
    OFF(kvm_run, "exit.mmio.data", mmio.data);
    OFF(kvm_run, "exit.mmio.len", mmio.len);
    OFF(kvm_run, "exit.mmio.is_write", mmio.is_write);
    OFF(kvm_run, "exit.internal.suberror", internal.suberror);
    OFF(kvm_run, "exit.internal.ndata", internal.ndata);
    OFF(kvm_run, "exit.internal.data", internal.data);
    OFF(kvm_run, "exit.system_event.type", system_event.type);
    OFF(kvm_run, "exit.system_event.ndata", system_event.ndata);
    OFF(kvm_run, "exit.system_event.data", system_event.data);
    OFF(kvm_run, "exit.msr.error", msr.error);
    OFF(kvm_run, "exit.msr.reason", msr.reason);
    OFF(kvm_run, "exit.msr.index", msr.index);
    OFF(kvm_run, "exit.msr.data", msr.data);
    OFF(kvm_run, "kvm_valid_regs", kvm_valid_regs);
    OFF(kvm_run, "kvm_dirty_regs", kvm_dirty_regs);
    OFF(kvm_run, "s.regs.regs", s.regs.regs);
    OFF(kvm_run, "s.regs.sregs", s.regs.sregs);
    OFF(kvm_run, "s.regs.events", s.regs.events);

    SIZE(kvm_regs);
    OFF(kvm_regs, "rax", rax); OFF(kvm_regs, "rbx", rbx); OFF(kvm_regs, "rcx", rcx); OFF(kvm_regs, "rdx", rdx);
    OFF(kvm_regs, "rsi", rsi); OFF(kvm_regs, "rdi", rdi); OFF(kvm_regs, "rsp", rsp); OFF(kvm_regs, "rbp", rbp);
    OFF(kvm_regs, "r8", r8); OFF(kvm_regs, "r9", r9); OFF(kvm_regs, "r10", r10); OFF(kvm_regs, "r11", r11);
    OFF(kvm_regs, "r12", r12); OFF(kvm_regs, "r13", r13); OFF(kvm_regs, "r14", r14); OFF(kvm_regs, "r15", r15);
    OFF(kvm_regs, "rip", rip); OFF(kvm_regs, "rflags", rflags);

    SIZE(kvm_segment);
    OFF(kvm_segment, "base", base); OFF(kvm_segment, "limit", limit); OFF(kvm_segment, "selector", selector);
    OFF(kvm_segment, "type", type); OFF(kvm_segment, "present", present); OFF(kvm_segment, "dpl", dpl);
    OFF(kvm_segment, "db", db); OFF(kvm_segment, "s", s); OFF(kvm_segment, "l", l); OFF(kvm_segment, "g", g);
    OFF(kvm_segment, "avl", avl); OFF(kvm_segment, "unusable", unusable);

    SIZE(kvm_dtable);
    OFF(kvm_dtable, "base", base); OFF(kvm_dtable, "limit", limit);

    SIZE(kvm_sregs);
    OFF(kvm_sregs, "cs", cs); OFF(kvm_sregs, "ds", ds); OFF(kvm_sregs, "es", es); OFF(kvm_sregs, "fs", fs);
    OFF(kvm_sregs, "gs", gs); OFF(kvm_sregs, "ss", ss); OFF(kvm_sregs, "tr", tr); OFF(kvm_sregs, "ldt", ldt);
    OFF(kvm_sregs, "gdt", gdt); OFF(kvm_sregs, "idt", idt);
    OFF(kvm_sregs, "cr0", cr0); OFF(kvm_sregs, "cr2", cr2); OFF(kvm_sregs, "cr3", cr3); OFF(kvm_sregs, "cr4", cr4);
    OFF(kvm_sregs, "cr8", cr8); OFF(kvm_sregs, "efer", efer); OFF(kvm_sregs, "apic_base", apic_base);
    OFF(kvm_sregs, "interrupt_bitmap", interrupt_bitmap);

    SIZE(kvm_vcpu_events);
    OFF(kvm_vcpu_events, "exception.injected", exception.injected);
    OFF(kvm_vcpu_events, "exception.nr", exception.nr);
    OFF(kvm_vcpu_events, "exception.has_error_code", exception.has_error_code);
    OFF(kvm_vcpu_events, "exception.pending", exception.pending);
    OFF(kvm_vcpu_events, "exception.error_code", exception.error_code);
    OFF(kvm_vcpu_events, "interrupt.injected", interrupt.injected);
    OFF(kvm_vcpu_events, "interrupt.nr", interrupt.nr);
    OFF(kvm_vcpu_events, "interrupt.soft", interrupt.soft);
    OFF(kvm_vcpu_events, "interrupt.shadow", interrupt.shadow);
    OFF(kvm_vcpu_events, "nmi.injected", nmi.injected);
    OFF(kvm_vcpu_events, "nmi.pending", nmi.pending);
    OFF(kvm_vcpu_events, "nmi.masked", nmi.masked);
    OFF(kvm_vcpu_events, "sipi_vector", sipi_vector);
    OFF(kvm_vcpu_events, "flags", flags);
    OFF(kvm_vcpu_events, "smi.smm", smi.smm);
    OFF(kvm_vcpu_events, "triple_fault.pending", triple_fault.pending);
    OFF(kvm_vcpu_events, "exception_has_payload", exception_has_payload);
    OFF(kvm_vcpu_events, "exception_payload", exception_payload);

    SIZE(kvm_xsave);
    OFF(kvm_xsave, "region", region);

    SIZE(kvm_xcrs);
    OFF(kvm_xcrs, "nr_xcrs", nr_xcrs); OFF(kvm_xcrs, "flags", flags); OFF(kvm_xcrs, "xcrs", xcrs);
    SIZE(kvm_xcr);
    OFF(kvm_xcr, "xcr", xcr); OFF(kvm_xcr, "value", value);

    SIZE(kvm_msrs);
    OFF(kvm_msrs, "nmsrs", nmsrs); OFF(kvm_msrs, "entries", entries);
    SIZE(kvm_msr_entry);
    OFF(kvm_msr_entry, "index", index); OFF(kvm_msr_entry, "data", data);

    SIZE(kvm_msr_list);
    OFF(kvm_msr_list, "nmsrs", nmsrs); OFF(kvm_msr_list, "indices", indices);

    SIZE(kvm_cpuid2);
    OFF(kvm_cpuid2, "nent", nent); OFF(kvm_cpuid2, "entries", entries);
    SIZE(kvm_cpuid_entry2);
    OFF(kvm_cpuid_entry2, "function", function); OFF(kvm_cpuid_entry2, "index", index);
    OFF(kvm_cpuid_entry2, "flags", flags); OFF(kvm_cpuid_entry2, "eax", eax); OFF(kvm_cpuid_entry2, "ebx", ebx);
    OFF(kvm_cpuid_entry2, "ecx", ecx); OFF(kvm_cpuid_entry2, "edx", edx);

    SIZE(kvm_userspace_memory_region);
    OFF(kvm_userspace_memory_region, "slot", slot); OFF(kvm_userspace_memory_region, "flags", flags);
    OFF(kvm_userspace_memory_region, "guest_phys_addr", guest_phys_addr);
    OFF(kvm_userspace_memory_region, "memory_size", memory_size);
    OFF(kvm_userspace_memory_region, "userspace_addr", userspace_addr);

    SIZE(kvm_msr_filter);
    OFF(kvm_msr_filter, "flags", flags); OFF(kvm_msr_filter, "ranges", ranges);
    SIZE(kvm_msr_filter_range);
    OFF(kvm_msr_filter_range, "flags", flags); OFF(kvm_msr_filter_range, "nmsrs", nmsrs);
    OFF(kvm_msr_filter_range, "base", base); OFF(kvm_msr_filter_range, "bitmap", bitmap);

    SIZE(kvm_guest_debug);
    OFF(kvm_guest_debug, "control", control); OFF(kvm_guest_debug, "debugreg", arch.debugreg);

    SIZE(kvm_translation);
    OFF(kvm_translation, "linear_address", linear_address);
    OFF(kvm_translation, "physical_address", physical_address);
    OFF(kvm_translation, "valid", valid); OFF(kvm_translation, "writeable", writeable);
    OFF(kvm_translation, "usermode", usermode);

    SIZE(kvm_dirty_log);
    OFF(kvm_dirty_log, "slot", slot); OFF(kvm_dirty_log, "dirty_bitmap", dirty_bitmap);

    SIZE(kvm_debugregs);
    OFF(kvm_debugregs, "db", db); OFF(kvm_debugregs, "dr6", dr6); OFF(kvm_debugregs, "dr7", dr7);
    OFF(kvm_debugregs, "flags", flags);

    SIZE(kvm_enable_cap);
    OFF(kvm_enable_cap, "cap", cap); OFF(kvm_enable_cap, "flags", flags); OFF(kvm_enable_cap, "args", args);

    SIZE(kvm_signal_mask);
    OFF(kvm_signal_mask, "len", len); OFF(kvm_signal_mask, "sigset", sigset);

    SIZE(kvm_interrupt);
    OFF(kvm_interrupt, "irq", irq);

    IOCTL(KVM_GET_API_VERSION); IOCTL(KVM_CREATE_VM); IOCTL(KVM_GET_MSR_INDEX_LIST); IOCTL(KVM_CHECK_EXTENSION);
    IOCTL(KVM_GET_VCPU_MMAP_SIZE); IOCTL(KVM_GET_SUPPORTED_CPUID); IOCTL(KVM_GET_MSR_FEATURE_INDEX_LIST);
    IOCTL(KVM_CREATE_VCPU); IOCTL(KVM_GET_DIRTY_LOG); IOCTL(KVM_SET_USER_MEMORY_REGION); IOCTL(KVM_RUN);
    IOCTL(KVM_GET_REGS); IOCTL(KVM_SET_REGS); IOCTL(KVM_GET_SREGS); IOCTL(KVM_SET_SREGS); IOCTL(KVM_TRANSLATE);
    IOCTL(KVM_INTERRUPT); IOCTL(KVM_GET_MSRS); IOCTL(KVM_SET_MSRS); IOCTL(KVM_SET_SIGNAL_MASK);
    IOCTL(KVM_SET_CPUID2); IOCTL(KVM_GET_CPUID2); IOCTL(KVM_NMI); IOCTL(KVM_SET_GUEST_DEBUG);
    IOCTL(KVM_GET_VCPU_EVENTS); IOCTL(KVM_SET_VCPU_EVENTS); IOCTL(KVM_GET_DEBUGREGS); IOCTL(KVM_SET_DEBUGREGS);
    IOCTL(KVM_ENABLE_CAP); IOCTL(KVM_GET_XSAVE); IOCTL(KVM_SET_XSAVE); IOCTL(KVM_GET_XCRS); IOCTL(KVM_SET_XCRS);
    IOCTL(KVM_GET_TSC_KHZ); IOCTL(KVM_X86_SET_MSR_FILTER); IOCTL(KVM_GET_XSAVE2);
    return 0;
}
