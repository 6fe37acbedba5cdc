package dev.jhv.hv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import dev.jhv.cli.GuestImage;

import static dev.jhv.hv.Hv.*;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The process VM of the facade, with 4 MiB of RAM at guest-physical 0 holding a test guest, and
 * a vCPU owned by the calling thread. Closing destroys both, so the next test starts clean.
 */
final class HvSession implements AutoCloseable {
    static final long RAM_BYTES = 4 << 20;

    final Arena arena = Arena.ofShared();
    final MemorySegment ram = arena.allocate(RAM_BYTES, 4096);
    final GuestImage guest;
    final int vcpu;

    HvSession(String name) {
        guest = GuestImage.resource("/dev/jhv/testguests", name);
        MemorySegment.copy(guest.image(), 0, ram, ValueLayout.JAVA_BYTE, 0, guest.image().length);
        ok(hv_vm_create(HV_VM_DEFAULT));
        ok(hv_vm_map(ram, 0, RAM_BYTES, HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC));
        int[] id = new int[1];
        ok(hv_vcpu_create(id, HV_VCPU_DEFAULT));
        vcpu = id[0];
    }

    static void ok(int result) {
        assertEquals(HV_SUCCESS, result, () -> "hv_return_t 0x" + Integer.toHexString(result));
    }

    long symbol(String name) {
        return guest.symbol(name);
    }

    long vmcs(int field) {
        long[] value = new long[1];
        ok(hv_vmx_vcpu_read_vmcs(vcpu, field, value));
        return value[0];
    }

    void vmcs(int field, long value) {
        ok(hv_vmx_vcpu_write_vmcs(vcpu, field, value));
    }

    long reg(int register) {
        long[] value = new long[1];
        ok(hv_vcpu_read_register(vcpu, register, value));
        return value[0];
    }

    void reg(int register, long value) {
        ok(hv_vcpu_write_register(vcpu, register, value));
    }

    /** QEMU's cap2ctrl. */
    static long cap2ctrl(long cap, long ctrl) {
        return (ctrl | (cap & 0xffffffffL)) & (cap >>> 32);
    }

    long capability(int id) {
        long[] value = new long[1];
        ok(hv_vmx_read_capability(id, value));
        return value[0];
    }

    /** Real mode at {@code entry} with flat 64 KiB segments at 0, written through VMCS fields as xhyve does. */
    void realMode(long entry) {
        vmcs(VMCS_CTRL_VMENTRY_CONTROLS, cap2ctrl(capability(HV_VMX_CAP_ENTRY), 0));
        vmcs(VMCS_CTRL_CPU_BASED, cap2ctrl(capability(HV_VMX_CAP_PROCBASED), CPU_BASED_HLT));
        vmcs(VMCS_GUEST_CR0, 0x30);
        vmcs(VMCS_GUEST_CR4, 0x2000);
        vmcs(VMCS_GUEST_IA32_EFER, 0);
        int[][] segments = {
            {VMCS_GUEST_CS, VMCS_GUEST_CS_BASE, VMCS_GUEST_CS_LIMIT, VMCS_GUEST_CS_AR, 0x9b},
            {VMCS_GUEST_DS, VMCS_GUEST_DS_BASE, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_DS_AR, 0x93},
            {VMCS_GUEST_ES, VMCS_GUEST_ES_BASE, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_ES_AR, 0x93},
            {VMCS_GUEST_SS, VMCS_GUEST_SS_BASE, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_SS_AR, 0x93},
            {VMCS_GUEST_FS, VMCS_GUEST_FS_BASE, VMCS_GUEST_FS_LIMIT, VMCS_GUEST_FS_AR, 0x93},
            {VMCS_GUEST_GS, VMCS_GUEST_GS_BASE, VMCS_GUEST_GS_LIMIT, VMCS_GUEST_GS_AR, 0x93}};
        for (int[] s : segments) {
            vmcs(s[0], 0);
            vmcs(s[1], 0);
            vmcs(s[2], 0xffff);
            vmcs(s[3], s[4]);
        }
        vmcs(VMCS_GUEST_IDTR_BASE, 0);
        vmcs(VMCS_GUEST_IDTR_LIMIT, 0x3ff);
        vmcs(VMCS_GUEST_RFLAGS, 0x2);
        vmcs(VMCS_GUEST_RSP, 0x7000);
        vmcs(VMCS_GUEST_RIP, entry);
    }

    /** One run; returns the exit reason. */
    long run() {
        ok(hv_vcpu_run_until(vcpu, HV_DEADLINE_FOREVER));
        return vmcs(VMCS_RO_EXIT_REASON);
    }

    /** The client's part of an instruction-caused exit: RIP += instruction length. */
    void skip() {
        reg(HV_X86_RIP, reg(HV_X86_RIP) + vmcs(VMCS_RO_VMEXIT_INSTR_LEN));
    }

    /** The client's part of an EPT violation: decode the instruction at RIP (64-bit, identity-mapped) and skip it. */
    void skipDecoded() {
        long rip = reg(HV_X86_RIP);
        byte[] code = new byte[15];
        MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, rip, code, 0, code.length);
        var instruction = dev.jhv.vmx.InstructionDecoder.decode(code, 0, code.length,
                dev.jhv.vmx.InstructionDecoder.Mode.LONG_64);
        reg(HV_X86_RIP, rip + instruction.length());
    }

    @Override
    public void close() {
        try {
            ok(hv_vcpu_destroy(vcpu));
        } finally {
            ok(hv_vm_destroy());   // unmaps everything
            arena.close();
        }
    }
}
