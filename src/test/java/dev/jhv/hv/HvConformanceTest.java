package dev.jhv.hv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import dev.jhv.RequiresKvm;
import org.junit.jupiter.api.Test;

import static dev.jhv.hv.Hv.*;
import static dev.jhv.hv.HvSession.cap2ctrl;
import static dev.jhv.hv.HvSession.ok;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The conformance checklist of the hv_* facade (C-xx), with real guests, through the facade only. */
@RequiresKvm
class HvConformanceTest {
    // ---------------------------------------------------------------- life cycle and threading

    @Test
    void c01c02OneVmPerProcessAndCreateAgainAfterDestroy() {
        ok(hv_vm_create(HV_VM_DEFAULT));
        assertEquals(HV_BUSY, hv_vm_create(HV_VM_DEFAULT));
        ok(hv_vm_destroy());
        ok(hv_vm_create(HV_VM_DEFAULT));
        ok(hv_vm_destroy());
        assertEquals(HV_BAD_ARGUMENT, hv_vm_destroy(), "no VM left");
    }

    @Test
    void c03c04c05VcpusBelongToTheirThreads() throws Exception {
        try (HvSession s = new HvSession("hvreal")) {
            assertEquals(0, s.vcpu);
            AtomicInteger otherId = new AtomicInteger(-1);
            AtomicInteger foreignRead = new AtomicInteger();
            AtomicInteger foreignWrite = new AtomicInteger();
            AtomicInteger foreignRun = new AtomicInteger();
            AtomicInteger kick = new AtomicInteger();
            long[] untouched = {0x5555};
            s.reg(HV_X86_RAX, 0x1234);
            Thread other = Thread.ofPlatform().start(() -> {
                int[] id = new int[1];
                ok(hv_vcpu_create(id, HV_VCPU_DEFAULT));
                otherId.set(id[0]);
                foreignRead.set(hv_vcpu_read_register(s.vcpu, HV_X86_RAX, untouched));
                foreignWrite.set(hv_vcpu_write_register(s.vcpu, HV_X86_RAX, 1));
                foreignRun.set(hv_vcpu_run(s.vcpu));
                kick.set(hv_vcpu_interrupt(new int[] {s.vcpu}, 1));
                ok(hv_vcpu_destroy(id[0]));
            });
            other.join();
            assertEquals(1, otherId.get(), "ids in creation order");
            assertEquals(HV_BAD_ARGUMENT, foreignRead.get());
            assertEquals(0x5555, untouched[0], "out-parameter untouched on failure");
            assertEquals(HV_BAD_ARGUMENT, foreignWrite.get());
            assertEquals(HV_BAD_ARGUMENT, foreignRun.get());
            assertEquals(0x1234, s.reg(HV_X86_RAX), "no side effect");
            assertEquals(HV_SUCCESS, kick.get(), "hv_vcpu_interrupt works from any thread");
            s.realMode(s.symbol("io_test"));
            assertEquals(VMX_REASON_IRQ, s.run(), "the kick was kept for the next run");
        }
    }

    @Test
    void c06c07BadFlagsAndCapabilities() {
        try (HvSession s = new HvSession("hvreal")) {
            int[] id = {77};
            assertEquals(HV_BUSY, hv_vcpu_create(id, HV_VCPU_DEFAULT), "this thread already owns a vCPU");
            assertEquals(HV_BAD_ARGUMENT, hv_vcpu_create(id, 1L << 40));
            assertEquals(77, id[0]);
            long[] value = new long[1];
            ok(hv_capability(HV_CAP_VCPUMAX, value));
            assertTrue(value[0] >= 1);
            ok(hv_capability(HV_CAP_ADDRSPACEMAX, value));
            assertEquals(1, value[0]);
            assertEquals(HV_BAD_ARGUMENT, hv_capability(7, value));
            assertEquals(HV_UNSUPPORTED, hv_vm_space_create(new int[1]));
            assertEquals(HV_UNSUPPORTED, hv_vmx_vcpu_read_shadow_vmcs(s.vcpu, VMCS_GUEST_RIP, value));
        }
    }

    @Test
    void c10MisalignedMapsAreRefused() {
        try (HvSession s = new HvSession("hvreal"); Arena arena = Arena.ofShared()) {
            MemorySegment page = arena.allocate(8192, 4096);
            assertEquals(HV_BAD_ARGUMENT, hv_vm_map(page, 0x10000001L, 4096, HV_MEMORY_READ));
            assertEquals(HV_BAD_ARGUMENT, hv_vm_map(page.asSlice(8), 0x10000000L, 4096, HV_MEMORY_READ));
            assertEquals(HV_BAD_ARGUMENT, hv_vm_map(page, 0x10000000L, 100, HV_MEMORY_READ));
            assertEquals(HV_BAD_ARGUMENT, hv_vm_map(page, 0x10000000L, 3 * 4096, HV_MEMORY_READ), "beyond the segment");
            assertEquals(HV_BAD_ARGUMENT, hv_vm_map(MemorySegment.ofAddress(page.address()), 0x10000000L, 4096,
                    HV_MEMORY_READ), "a raw address is not vouched for");
            assertEquals(HV_BAD_ARGUMENT, hv_vm_unmap(0x10000000L, 4096), "nothing was mapped");
        }
    }

    // ---------------------------------------------------------------- capabilities and controls

    @Test
    void c20c21c24CapabilitiesFollowApplesRules() {
        try (HvSession s = new HvSession("hvreal")) {
            for (int id = HV_VMX_CAP_PINBASED; id <= HV_VMX_CAP_EXIT; id++) {
                long cap = s.capability(id);
                assertEquals(0, (cap & 0xffffffffL) & ~(cap >>> 32), "must-be-1 bits are allowed, capability " + id);
            }
            long pin = s.capability(HV_VMX_CAP_PINBASED);
            assertEquals(PIN_BASED_INTR | PIN_BASED_NMI | PIN_BASED_VIRTUAL_NMI,
                    pin & (PIN_BASED_INTR | PIN_BASED_NMI | PIN_BASED_VIRTUAL_NMI));
            assertEquals(0, (pin >>> 32) & PIN_BASED_POSTED_INTR);
            long proc = s.capability(HV_VMX_CAP_PROCBASED);
            long mustProc = CPU_BASED_TSC_OFFSET | CPU_BASED_UNCOND_IO | CPU_BASED_MSR_BITMAPS | CPU_BASED_SECONDARY_CTLS;
            assertEquals(mustProc, proc & mustProc);
            assertEquals(0, (proc >>> 32) & CPU_BASED_IO_BITMAPS);
            long proc2 = s.capability(HV_VMX_CAP_PROCBASED2);
            assertEquals(CPU_BASED2_EPT | CPU_BASED2_VPID | CPU_BASED2_UNRESTRICTED,
                    proc2 & (CPU_BASED2_EPT | CPU_BASED2_VPID | CPU_BASED2_UNRESTRICTED));
            assertEquals(0, (proc2 >>> 32) & (CPU_BASED2_X2APIC | CPU_BASED2_APIC_REG_VIRT
                    | CPU_BASED2_VIRT_INTR_DELIVERY | CPU_BASED2_VMFUNC | CPU_BASED2_EPT_VE | CPU_BASED2_PML));
            long entry = s.capability(HV_VMX_CAP_ENTRY);
            assertEquals(VMENTRY_LOAD_EFER, entry & VMENTRY_LOAD_EFER);
            assertEquals(0, (entry >>> 32) & (VMENTRY_SMM | VMENTRY_DEACTIVATE_DUAL_MONITOR));
            long exit = s.capability(HV_VMX_CAP_EXIT);
            long mustExit = VMEXIT_HOST_IA32E | VMEXIT_LOAD_IA32_PAT | VMEXIT_LOAD_EFER;
            assertEquals(mustExit, exit & mustExit);
            assertEquals(0, (exit >>> 32) & (VMEXIT_ACK_INTR | VMEXIT_SAVE_IA32_PAT));

            long[] allowed0 = new long[1];
            long[] allowed1 = new long[1];
            ok(hv_vmx_vcpu_get_cap_write_vmcs(s.vcpu, VMCS_CTRL_CPU_BASED, allowed0, allowed1));
            assertEquals(proc & 0xffffffffL, allowed0[0]);
            assertEquals(proc >>> 32, allowed1[0]);
            assertEquals(HV_BAD_ARGUMENT, hv_vmx_read_capability(99, allowed0));
        }
    }

    @Test
    void c22c23c25ControlWritesAreChecked() {
        try (HvSession s = new HvSession("hvreal")) {
            long pin = cap2ctrl(s.capability(HV_VMX_CAP_PINBASED), PIN_BASED_INTR | PIN_BASED_NMI | PIN_BASED_VIRTUAL_NMI);
            long proc = cap2ctrl(s.capability(HV_VMX_CAP_PROCBASED), CPU_BASED_HLT | CPU_BASED_MWAIT
                    | CPU_BASED_TSC_OFFSET | CPU_BASED_TPR_SHADOW) | CPU_BASED_SECONDARY_CTLS;
            long proc2 = cap2ctrl(s.capability(HV_VMX_CAP_PROCBASED2), CPU_BASED2_VIRTUAL_APIC);
            long entry = cap2ctrl(s.capability(HV_VMX_CAP_ENTRY), 0);
            for (long[] write : new long[][] {{VMCS_CTRL_PIN_BASED, pin}, {VMCS_CTRL_CPU_BASED, proc},
                {VMCS_CTRL_CPU_BASED2, proc2}, {VMCS_CTRL_VMENTRY_CONTROLS, entry}}) {
                s.vmcs((int) write[0], write[1]);
                assertEquals(write[1], s.vmcs((int) write[0]), "read back");
            }
            assertEquals(HV_BAD_ARGUMENT, hv_vmx_vcpu_write_vmcs(s.vcpu, VMCS_CTRL_CPU_BASED, proc | CPU_BASED_IO_BITMAPS));
            assertEquals(proc, s.vmcs(VMCS_CTRL_CPU_BASED), "unchanged");
            assertEquals(HV_BAD_ARGUMENT, hv_vmx_vcpu_write_vmcs(s.vcpu, VMCS_RO_EXIT_REASON, 1));
            assertEquals(HV_BAD_ARGUMENT, hv_vmx_vcpu_write_vmcs(s.vcpu, VMCS_CTRL_TSC_OFFSET, 1));
            assertEquals(HV_BAD_ARGUMENT, hv_vmx_vcpu_write_vmcs(s.vcpu, VMCS_GUEST_ACTIVITY_STATE, 2));
            assertEquals(HV_BAD_ARGUMENT, hv_vmx_vcpu_write_vmcs(s.vcpu, VMCS_GUEST_CR0, 0x40000031L), "CD set");
            assertEquals(HV_BAD_ARGUMENT, hv_vmx_vcpu_write_vmcs(s.vcpu, VMCS_HOST_RIP, 1), "host state is the framework's");
        }
    }

    @Test
    void c30c31RegistersAndVmcsFieldsAreTheSameStorage() {
        try (HvSession s = new HvSession("hvreal")) {
            s.reg(HV_X86_RIP, 0x1234);
            assertEquals(0x1234, s.vmcs(VMCS_GUEST_RIP));
            s.vmcs(VMCS_GUEST_RSP, 0x5678);
            assertEquals(0x5678, s.reg(HV_X86_RSP));
            s.vmcs(VMCS_GUEST_RFLAGS, 0x202);
            assertEquals(0x202, s.reg(HV_X86_RFLAGS));
            s.vmcs(VMCS_GUEST_CR3, 0x9000);
            assertEquals(0x9000, s.reg(HV_X86_CR3));
            s.vmcs(VMCS_GUEST_CR4, 0x2020);   // VMXE as clients write it, and PAE
            assertEquals(0x2020, s.vmcs(VMCS_GUEST_CR4));
            s.reg(HV_X86_DS, 0x18);
            assertEquals(0x18, s.vmcs(VMCS_GUEST_DS));
            s.vmcs(VMCS_GUEST_GDTR_BASE, 0x800);
            s.vmcs(VMCS_GUEST_GDTR_LIMIT, 0x37);
            assertEquals(0x800, s.reg(HV_X86_GDT_BASE));
            assertEquals(0x37, s.reg(HV_X86_GDT_LIMIT));
            s.vmcs(VMCS_GUEST_TR_AR, 0x8b);
            s.vmcs(VMCS_GUEST_TR_BASE, 0x3000);
            assertEquals(0x8b, s.reg(HV_X86_TSS_AR));
            assertEquals(0x3000, s.reg(HV_X86_TSS_BASE));
            s.reg(HV_X86_LDT_LIMIT, 0xfff);
            assertEquals(0xfff, s.vmcs(VMCS_GUEST_LDTR_LIMIT));
            s.vmcs(VMCS_GUEST_DR7, 0x400);
            assertEquals(0x400, s.reg(HV_X86_DR7));
            long[] value = {9};
            assertEquals(HV_BAD_ARGUMENT, hv_vcpu_read_register(s.vcpu, HV_X86_REGISTERS_MAX, value));
            assertEquals(9, value[0]);
        }
    }

    // ---------------------------------------------------------------- exits

    @Test
    void c40TheResetStateRunsTheResetVector() {
        try (HvSession s = new HvSession("hvreal"); Arena arena = Arena.ofShared()) {
            MemorySegment rom = arena.allocate(0x10000, 4096);
            MemorySegment.copy(s.ram, s.symbol("reset_code"), rom, 0xfff0, 8);
            ok(hv_vm_map(rom, 0xffff0000L, 0x10000, HV_MEMORY_READ | HV_MEMORY_EXEC));
            assertEquals(0xfff0, s.reg(HV_X86_RIP));
            assertEquals(0xffff0000L, s.vmcs(VMCS_GUEST_CS_BASE));
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x00800040L, s.vmcs(VMCS_RO_EXIT_QUALIFIC), "OUT 0x80, imm8");
            assertEquals(0x52, s.reg(HV_X86_RAX) & 0xff);
            assertEquals(0xfff2, s.reg(HV_X86_RIP), "at the OUT, after the 2-byte MOV");
            ok(hv_vm_unmap(0xffff0000L, 0x10000));
        }
    }

    @Test
    void c41c42c45PortIoAndHltAsVtxReportsThem() {
        try (HvSession s = new HvSession("hvreal")) {
            long start = s.symbol("io_test");
            s.realMode(start);

            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x03f80000L, s.vmcs(VMCS_RO_EXIT_QUALIFIC));
            assertEquals(0x41, s.reg(HV_X86_RAX) & 0xff);
            assertEquals(1, s.vmcs(VMCS_RO_VMEXIT_INSTR_LEN));
            assertEquals(start + 5, s.reg(HV_X86_RIP), "RIP at the OUT");
            s.skip();

            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x00600048L, s.vmcs(VMCS_RO_EXIT_QUALIFIC));
            assertEquals(2, s.vmcs(VMCS_RO_VMEXIT_INSTR_LEN));
            assertEquals(start + 6, s.reg(HV_X86_RIP), "RIP at the IN");
            s.reg(HV_X86_RAX, (s.reg(HV_X86_RAX) & ~0xffL) | 0x7e);   // the client's IN emulation
            s.skip();

            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x00610040L, s.vmcs(VMCS_RO_EXIT_QUALIFIC));
            assertEquals(0x7e, s.reg(HV_X86_RAX) & 0xff, "the value the client gave the IN");
            s.skip();

            assertEquals(VMX_REASON_HLT, s.run());
            assertEquals(1, s.vmcs(VMCS_RO_VMEXIT_INSTR_LEN));
            assertEquals(start + 10, s.reg(HV_X86_RIP), "RIP at the HLT");
        }
    }

    @Test
    void unadvancedOutRunsAgainAsOnVtx() {
        try (HvSession s = new HvSession("hvreal")) {
            s.realMode(s.symbol("io_test"));
            assertEquals(VMX_REASON_IO, s.run());
            long rip = s.reg(HV_X86_RIP);
            assertEquals(VMX_REASON_IO, s.run(), "RIP not advanced: the same OUT again");
            assertEquals(0x03f80000L, s.vmcs(VMCS_RO_EXIT_QUALIFIC));
            assertEquals(rip, s.reg(HV_X86_RIP));
        }
    }

    @Test
    void c12c13MmioIsAnEptViolationAtTheInstruction() {
        try (HvSession s = new HvSession("hvreal")) {
            long start = s.symbol("mmio_test");
            ok(hv_vm_unmap(0xd0000, 4096));   // a device page in the middle of RAM
            s.realMode(start);
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(0xd0010L, s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS));
            long read = s.vmcs(VMCS_RO_EXIT_QUALIFIC);
            assertEquals(1, read & 7, "data read");
            assertEquals(0, read & 0x38, "not mapped: no access bits");
            assertEquals(0x180, read & 0x180, "linear address valid and translated");
            long loadAt = s.reg(HV_X86_RIP);
            assertEquals(start + 5, loadAt, "RIP at the load (after the 3-byte MOV and 2-byte MOV ES)");
            // The client emulates "mov al, es:[0x10]" (26 a0 10 00: 4 bytes).
            s.reg(HV_X86_RAX, 0x33);
            s.reg(HV_X86_RIP, loadAt + 4);

            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(0xd0020L, s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS));
            assertEquals(2, s.vmcs(VMCS_RO_EXIT_QUALIFIC) & 7, "data write");
            assertEquals(loadAt + 6, s.reg(HV_X86_RIP), "RIP at the store, after INC AL");
            assertEquals(0x34, s.reg(HV_X86_RAX) & 0xff, "what the guest stores");
            s.reg(HV_X86_RIP, loadAt + 10);   // "mov es:[0x20], al" (26 a2 20 00)
            assertEquals(VMX_REASON_HLT, s.run());
        }
    }

    @Test
    void c14ProtectedPageWriteExitsWithTheAccessBitsAndRestarts() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_store");
            long data = s.symbol("data");
            ok(hv_vm_protect(data, 4096, HV_MEMORY_READ | HV_MEMORY_EXEC));
            s.reg(HV_X86_RDI, data);
            s.reg(HV_X86_RSI, 0x4242);
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            long qualification = s.vmcs(VMCS_RO_EXIT_QUALIFIC);
            assertEquals(2, qualification & 7, "write");
            assertEquals(1 << 3, qualification & (1 << 3), "readable");
            assertEquals(0, qualification & (1 << 4), "not writable");
            assertEquals(data, s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS));
            assertEquals(s.symbol("u_store"), s.reg(HV_X86_RIP), "RIP at the store");
            assertEquals(0x1111111111111111L, s.ram.get(ValueLayout.JAVA_LONG, data), "not written");
            // As QEMU's dirty tracking does: make the page writable and restart the instruction.
            ok(hv_vm_protect(data, 4096, HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC));
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(s.symbol("MMIO_BASE"), s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS), "no second exit for the store");
            assertEquals(0x4242, s.ram.get(ValueLayout.JAVA_LONG, data));
        }
    }

    @Test
    void c16UnmappedPageExits() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_load");
            long data = s.symbol("data");
            ok(hv_vm_unmap(data, 4096));
            s.reg(HV_X86_RDI, data + 8);
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(data + 8, s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS));
            assertEquals(1, s.vmcs(VMCS_RO_EXIT_QUALIFIC) & 7);
            // The client emulates "mov (%rdi), %rax" (48 8b 07) and moves past it.
            long loadAt = s.reg(HV_X86_RIP);
            assertEquals(s.symbol("u_load"), loadAt);
            s.reg(HV_X86_RAX, 0x5eed);
            s.reg(HV_X86_RIP, loadAt + 3);
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(s.symbol("MMIO_BASE"), s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS), "the report store");
            assertEquals(loadAt + 3, s.reg(HV_X86_RIP));
            assertEquals(0x5eed, s.reg(HV_X86_RAX), "the guest carries on with the client's value");
        }
    }

    @Test
    void c16ARestartedLoadReadsTheMemoryMappedSinceTheExit() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_load");
            long data = s.symbol("data");
            ok(hv_vm_protect(data, 4096, 0));   // no access
            s.reg(HV_X86_RDI, data);
            s.reg(HV_X86_RAX, 0x77);
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(data, s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS));
            assertEquals(s.symbol("u_load"), s.reg(HV_X86_RIP), "RIP at the load");
            // Like a dirty-tracking or lazily mapping client: give the page back, run the load again.
            ok(hv_vm_protect(data, 4096, HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC));
            assertEquals(0x77, s.reg(HV_X86_RAX), "KVM's unfinished load left no trace");
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(s.symbol("MMIO_BASE"), s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS), "the report store");
            assertEquals(0x1111111111111111L, s.reg(HV_X86_RAX), "the guest read the memory");
        }
    }

    @Test
    void c33c47MsrsExitUnlessNative() {
        try (HvSession s = new HvSession("hvreal")) {
            s.realMode(s.symbol("msr_test"));
            ok(hv_vcpu_enable_native_msr(s.vcpu, HV_MSR_IA32_SYSENTER_CS, true));
            ok(hv_vcpu_write_msr(s.vcpu, HV_MSR_IA32_SYSENTER_CS, 0x10));
            assertEquals(HV_BAD_ARGUMENT, hv_vcpu_enable_native_msr(s.vcpu, 0x1b, true), "APIC base cannot be native");

            assertEquals(VMX_REASON_RDMSR, s.run());
            assertEquals(0xc0000081L, s.reg(HV_X86_RCX));
            assertEquals(2, s.vmcs(VMCS_RO_VMEXIT_INSTR_LEN));
            s.reg(HV_X86_RAX, 0xcafe);   // the client's RDMSR emulation
            s.reg(HV_X86_RDX, 0);
            s.skip();
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0xcafe, s.reg(HV_X86_RAX), "the guest got the emulated value");
            s.skip();

            assertEquals(VMX_REASON_IO, s.run(), "SYSENTER_CS is native: no RDMSR exit");
            assertEquals(0x10, s.reg(HV_X86_RAX));
            s.skip();

            assertEquals(VMX_REASON_WRMSR, s.run());
            assertEquals(0x12345678, s.reg(HV_X86_RAX));
            s.skip();
            assertEquals(VMX_REASON_HLT, s.run());
        }
    }

    @Test
    void c43StringIoExitsOncePerInstructionAndTheClientEmulatesIt() {
        try (HvSession s = new HvSession("hvreal")) {
            long message = s.symbol("message");
            long buffer = s.symbol("buffer");
            s.realMode(s.symbol("string_test"));

            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x00e90030L, s.vmcs(VMCS_RO_EXIT_QUALIFIC), "OUT 0xe9, size 1, string, REP, DX");
            assertEquals(2, s.vmcs(VMCS_RO_VMEXIT_INSTR_LEN), "F3 6E");
            assertEquals(3L << 15, s.vmcs(VMCS_RO_VMX_INSTR_INFO), "16-bit addresses, DS");
            assertEquals(4, s.reg(HV_X86_RCX), "before the first element");
            assertEquals(message, s.reg(HV_X86_RSI));
            StringBuilder sent = new StringBuilder();   // the client emulates all four elements
            for (int i = 0; i < 4; i++) {
                sent.append((char) s.ram.get(ValueLayout.JAVA_BYTE, message + i));
            }
            assertEquals("jhv!", sent.toString());
            s.reg(HV_X86_RSI, message + 4);
            s.reg(HV_X86_RCX, 0);
            s.skip();

            assertEquals(VMX_REASON_IO, s.run(), "one exit for the whole REP OUTSB");
            assertEquals(0x00e90038L, s.vmcs(VMCS_RO_EXIT_QUALIFIC), "IN 0xe9, string, REP");
            assertEquals(buffer, s.reg(HV_X86_RDI));
            s.ram.set(ValueLayout.JAVA_INT_UNALIGNED, buffer, 0x44434241);   // the client's INSB emulation
            s.reg(HV_X86_RDI, buffer + 4);
            s.reg(HV_X86_RCX, 0);
            s.skip();

            assertEquals(VMX_REASON_HLT, s.run());
            assertEquals(0x44434241, s.ram.get(ValueLayout.JAVA_INT_UNALIGNED, buffer), "only the client wrote memory");
            assertEquals(buffer + 4, s.reg(HV_X86_RDI));
        }
    }

    @Test
    void c51BreakpointExitsWhenTheExceptionBitmapAsks() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring0(s, "k_int3");
            s.vmcs(VMCS_CTRL_EXC_BITMAP, 1 << 3);
            assertEquals(VMX_REASON_EXC_NMI, s.run());
            assertEquals(IRQ_INFO_VALID | IRQ_INFO_SOFT_EXC | 3, s.vmcs(VMCS_RO_VMEXIT_IRQ_INFO));
            assertEquals(1, s.vmcs(VMCS_RO_VMEXIT_INSTR_LEN));
            assertEquals(s.symbol("k_int3"), s.reg(HV_X86_RIP), "RIP at the INT3");
        }
    }

    @Test
    void c51DebugExceptionExitsWhenTheExceptionBitmapAsks() {
        assumeTrue(dev.jhv.Hypervisor.backend() != dev.jhv.Hypervisor.Backend.PVM,
                "KVM's PVM backend delivers guest #DB (single step, ICEBP, breakpoints) to the guest, never to user space");
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring0(s, "k_sum_squares");
            s.reg(HV_X86_RDI, 3);
            s.vmcs(VMCS_CTRL_EXC_BITMAP, 1 << 1);
            s.reg(HV_X86_RFLAGS, 0x102);   // TF
            assertEquals(VMX_REASON_EXC_NMI, s.run());
            assertEquals(IRQ_INFO_VALID | IRQ_INFO_HARD_EXC | 1, s.vmcs(VMCS_RO_VMEXIT_IRQ_INFO));
            assertEquals(1L << 14, s.vmcs(VMCS_RO_EXIT_QUALIFIC) & 1L << 14, "BS: single step");
        }
    }

    @Test
    void c53TripleFault() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring0(s, "k_ud2");
            s.vmcs(VMCS_GUEST_IDTR_LIMIT, 0);
            assertEquals(VMX_REASON_TRIPLE_FAULT, s.run());
        }
    }

    @Test
    void c54InvalidGuestStateIsAnEntryFailure() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring0(s, "k_sum_squares");
            s.vmcs(VMCS_CTRL_VMENTRY_CONTROLS, cap2ctrl(s.capability(HV_VMX_CAP_ENTRY), 0));   // IA-32e bit clear
            assertEquals(0x80000021L, s.run());
            assertEquals(0, s.vmcs(VMCS_RO_EXIT_QUALIFIC));
        }
    }

    @Test
    void c55DeadlineExpiry() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_spin");
            long deadline = System.nanoTime() + 20_000_000;
            ok(hv_vcpu_run_until(s.vcpu, deadline));
            assertEquals(VMX_REASON_VMX_TIMER_EXPIRED, s.vmcs(VMCS_RO_EXIT_REASON));
            assertTrue(System.nanoTime() >= deadline);
            assertTrue(s.reg(HV_X86_RAX) > 0, "the guest ran until then");
            ok(hv_vcpu_run_until(s.vcpu, System.nanoTime() - 1));
            assertEquals(VMX_REASON_VMX_TIMER_EXPIRED, s.vmcs(VMCS_RO_EXIT_REASON), "a past deadline");
        }
    }

    // ---------------------------------------------------------------- interrupts and kicks

    @Test
    void c60InjectedInterruptReachesTheRealModeHandler() throws Exception {
        try (HvSession s = new HvSession("hvreal")) {
            s.realMode(s.symbol("irq_test"));
            Thread kicker = kickAfter(s.vcpu, 20);
            assertEquals(VMX_REASON_IRQ, s.run(), "IVT set up, spinning with IF = 1");
            kicker.join();
            assertEquals(0x200, s.reg(HV_X86_RFLAGS) & 0x200);
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_EXT_IRQ | 0x20);
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x00210040L, s.vmcs(VMCS_RO_EXIT_QUALIFIC), "OUT 0x21 in the handler");
            assertEquals(0, s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO) & IRQ_INFO_VALID, "consumed by the entry");
            s.skip();
            kicker = kickAfter(s.vcpu, 10);
            assertEquals(VMX_REASON_IRQ, s.run(), "back in the loop after IRET");
            kicker.join();
            long rip = s.reg(HV_X86_RIP);
            assertTrue(rip >= s.symbol("irq_test") && rip < s.symbol("irq_handler"));
        }
    }

    @Test
    void c60InterruptWithIfClearIsRefusedAtEntry() {
        try (HvSession s = new HvSession("hvreal")) {
            s.realMode(s.symbol("io_test"));
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_EXT_IRQ | 0x20);
            assertEquals(0x80000021L, s.run(), "RFLAGS.IF = 0: VM entry fails, as on VT-x");
        }
    }

    @Test
    void nmiAndHardwareExceptionsWithErrorCodesReachTheGuestIdt() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_spin");
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_NMI | 2);
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(2, s.reg(HV_X86_RAX), "the NMI handler (vector 2) ran");
        }
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_spin");
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_HARD_EXC | IRQ_INFO_ERROR_VALID | 13);
            s.vmcs(VMCS_CTRL_VMENTRY_EXC_ERROR, 0x18);
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(13, s.reg(HV_X86_RAX), "#GP handler");
            s.skip();
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x18, s.reg(HV_X86_RAX), "with the injected error code");
        }
    }

    @Test
    void c63EventNotDeliveredBeforeAnExitIsReportedForReinjectionOnce() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_spin");
            s.reg(HV_X86_RFLAGS, 0x202);
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_EXT_IRQ | 0x20);
            ok(hv_vcpu_interrupt(new int[] {s.vcpu}, 1));   // the run ends before the guest takes it
            assertEquals(VMX_REASON_IRQ, s.run());
            long inFlight = s.vmcs(VMCS_RO_IDT_VECTOR_INFO);   // saved for re-injection, as clients do
            assertEquals(IRQ_INFO_VALID | 0x20, inFlight, "the interrupt in flight");
            Thread kicker = kickAfter(s.vcpu, 20);
            assertEquals(VMX_REASON_IRQ, s.run(), "not delivered behind the client's back");
            kicker.join();
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, inFlight);   // the client re-injects it
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x20, s.reg(HV_X86_RAX), "delivered once, by the client");
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void apicAccessPageExitsAsApicAccess() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_load");
            long apic = 0x3fe00000L;   // inside the guest's identity map, no memory behind it
            ok(hv_vmx_vcpu_set_apic_address(s.vcpu, apic));
            assertEquals(apic, s.vmcs(VMCS_CTRL_APIC_ACCESS));
            s.reg(HV_X86_RDI, apic + 0x80);   // the TPR register
            assertEquals(VMX_REASON_APIC_ACCESS, s.run());
            assertEquals(0x80, s.vmcs(VMCS_RO_EXIT_QUALIFIC), "offset 0x80, linear read");
        }
    }

    @Test
    void softwareInterruptInjectionReturnsPastTheInstruction() {
        try (HvSession s = new HvSession("hvreal")) {
            s.realMode(s.symbol("soft_test"));
            assertEquals(VMX_REASON_IO, s.run());
            s.skip();
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_SOFT_IRQ | 0x21);
            s.vmcs(VMCS_CTRL_VMENTRY_INSTR_LEN, 2);
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x00220040L, s.vmcs(VMCS_RO_EXIT_QUALIFIC), "OUT 0x22 in the INT 0x21 handler");
            s.skip();
            assertEquals(VMX_REASON_HLT, s.run());
            assertEquals(s.symbol("soft_point") + 2, s.reg(HV_X86_RIP), "IRET returned past the 2-byte INT");
        }
    }

    @Test
    void refusedMsrAccessBecomesTheClientsGeneralProtectionFault() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring0(s, "k_msr");
            assertEquals(VMX_REASON_WRMSR, s.run());
            long rip = s.reg(HV_X86_RIP);
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_HARD_EXC | IRQ_INFO_ERROR_VALID | 13);
            s.vmcs(VMCS_CTRL_VMENTRY_EXC_ERROR, 0);
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(13, s.reg(HV_X86_RAX), "the guest's #GP handler");
            s.skip();
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0, s.reg(HV_X86_RAX), "error code 0");
            assertEquals(0, s.ram.get(ValueLayout.JAVA_LONG, s.symbol("KERNEL_STACK_TOP") - 48 + 8) - rip,
                    "the fault frame points at the WRMSR");
        }
    }

    @Test
    void c44CpuidIsAnsweredFromTheClientsTableInsteadOfExiting() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring0(s, "k_cpuid");
            dev.jhv.Vcpu vcpu = Hv.vcpu(s.vcpu);
            vcpu.setCpuid(vcpu.cpuid().with(new dev.jhv.CpuidTable.Entry(0x40000000, 0, 0, 0x40000001, 0x4a564844,
                    0x4a564844, 0x4a564844)));
            s.reg(HV_X86_RAX, 0x40000000L);
            assertEquals(VMX_REASON_IO, s.run(), "no exit 10: KVM answers CPUID in the kernel");
            assertEquals(0x40000001L, s.reg(HV_X86_RAX));
            s.skip();
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x4a564844L, s.reg(HV_X86_RAX), "from the client's table");
        }
    }

    @Test
    void c44CpuidExit() {
        assumeTrue(false, "KVM executes CPUID in the kernel and never exits to user space for it;"
                + " the client's answers go in a CPUID table (c44CpuidIsAnsweredFromTheClientsTableInsteadOfExiting)");
    }

    @Test
    void c46XsetbvExit() {
        assumeTrue(false, "KVM executes XSETBV in the kernel (checking it against the guest CPUID); no exit 55");
    }

    @Test
    void c48ControlRegisterExit() {
        assumeTrue(false, "KVM owns CR0/CR4 guest/host masks and handles MOV to/from CR itself: no exit 28, and guest"
                + " reads return the real value, not the read shadow");
    }

    @Test
    void c50TprThresholdExit() {
        assumeTrue(false, "KVM offers no TPR shadow to user space, so CPU_BASED_TPR_SHADOW is not allowed and exit 43"
                + " never happens; HV_X86_TPR is CR8 in the APIC layout");
    }

    @Test
    void c18AddressSpaces() {
        assumeTrue(false, "a KVM VM has one guest-physical address space: hv_vm_space_create returns HV_UNSUPPORTED");
    }

    @Test
    void c70RdtscRunsWithoutExiting() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_rdtsc");
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            long first = s.reg(HV_X86_RAX);
            s.skipDecoded();   // the client emulates "mov [MMIO_BASE], rax"
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run(), "no exit 16 in between");
            assertTrue(s.reg(HV_X86_RAX) > first);
        }
    }

    @Test
    void c61InterruptWindowOpensAfterSti() {
        try (HvSession s = new HvSession("hvreal")) {
            s.realMode(s.symbol("window_test"));
            s.vmcs(VMCS_CTRL_CPU_BASED, s.vmcs(VMCS_CTRL_CPU_BASED) | CPU_BASED_IRQ_WND);
            assertEquals(VMX_REASON_IRQ_WND, s.run());
            assertEquals(0x200, s.reg(HV_X86_RFLAGS) & 0x200, "IF set by STI");
            long rip = s.reg(HV_X86_RIP);
            assertTrue(rip > s.symbol("window_test") + 6, "not before the STI: RIP 0x" + Long.toHexString(rip));
        }
    }

    @Test
    void c62SoftInterruptNeedsAnInstructionLength() {
        try (HvSession s = new HvSession("hvreal")) {
            s.realMode(s.symbol("io_test"));
            s.vmcs(VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_SOFT_IRQ | 0x21);
            assertEquals(0x80000021L, s.run());
        }
    }

    @Test
    void c64c66KickAndExecTime() throws Exception {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring3(s, "u_spin");
            long[] before = new long[1];
            ok(hv_vcpu_get_exec_time(s.vcpu, before));
            Thread kicker = kickAfter(s.vcpu, 30);
            assertEquals(VMX_REASON_IRQ, s.run());
            kicker.join();
            long rip = s.reg(HV_X86_RIP);
            assertTrue(rip == s.symbol("u_spin") || rip == s.symbol("u_spin") + 3);
            long[] after = new long[1];
            ok(hv_vcpu_get_exec_time(s.vcpu, after));
            assertTrue(after[0] - before[0] >= 20_000_000, "exec time grew by the time spent in the guest");
        }
    }

    @Test
    void c32FpStateRoundTrip() {
        try (HvSession s = new HvSession("long"); Arena arena = Arena.ofConfined()) {
            LongModeVmcs.ring3(s, "u_fp");
            MemorySegment state = arena.allocate(4096);
            ok(hv_vcpu_read_fpstate(s.vcpu, state, 4096));
            state.set(ValueLayout.JAVA_LONG, 160, 0x0011223344556677L);
            ok(hv_vcpu_write_fpstate(s.vcpu, state, 4096));
            assertEquals(VMX_REASON_EPT_VIOLATION, s.run());
            assertEquals(s.symbol("MMIO_BASE"), s.vmcs(VMCS_GUEST_PHYSICAL_ADDRESS));
            assertEquals(0x0011223344556677L, s.reg(HV_X86_RAX), "the guest moved XMM0 into RAX for the store");
            assertEquals(HV_BAD_ARGUMENT, hv_vcpu_read_fpstate(s.vcpu, state, 512), "too small");
        }
    }

    @Test
    void longModeGuestSetUpOnlyThroughVmcsWrites() {
        try (HvSession s = new HvSession("long")) {
            LongModeVmcs.ring0(s, "k_sum_squares");
            s.reg(HV_X86_RDI, 20);
            assertEquals(VMX_REASON_IO, s.run());
            assertEquals(0x00100043L, s.vmcs(VMCS_RO_EXIT_QUALIFIC), "OUT 0x10, 4 bytes, immediate");
            assertEquals(2870, s.reg(HV_X86_RAX));
            assertEquals(2, s.vmcs(VMCS_RO_VMEXIT_INSTR_LEN));
            s.skip();
            assertEquals(VMX_REASON_HLT, s.run());
        }
    }

    private static Thread kickAfter(int vcpu, long millis) {
        return Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ok(hv_vcpu_interrupt(new int[] {vcpu}, 1));
        });
    }

    @Test
    void interruptOfAnUnknownVcpuFails() {
        try (HvSession s = new HvSession("hvreal")) {
            assertNotEquals(HV_SUCCESS, hv_vcpu_interrupt(new int[] {5}, 1));
            AtomicLong unused = new AtomicLong();
            assertEquals(0, unused.get());
        }
    }
}
