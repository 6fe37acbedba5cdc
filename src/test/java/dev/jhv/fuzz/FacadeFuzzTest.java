package dev.jhv.fuzz;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Set;

import dev.jhv.RequiresKvm;
import org.junit.jupiter.api.Test;

import static dev.jhv.hv.Hv.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Random sequences of hv_* calls with random arguments, over random guest code: every call
 * returns one of Apple's codes, none throws, the JVM survives (the tests run in a JVM forked from
 * the build's, so a crash fails the run instead of ending it), and the process VM can always be
 * torn down and created again.
 */
@RequiresKvm
class FacadeFuzzTest {
    private static final Set<Integer> CODES = Set.of(HV_SUCCESS, HV_ERROR, HV_BUSY, HV_BAD_ARGUMENT,
            HV_NO_RESOURCES, HV_NO_DEVICE, HV_DENIED, HV_FAULT, HV_UNSUPPORTED);
    private static final long RAM = 1 << 20;
    private static final int SEQUENCES = Integer.getInteger("jhv.fuzz.sequences", 200);
    private static final int CALLS = 60;

    @Test
    void everyCallReturnsADefinedCode() {
        long calls = 0;
        long successes = 0;
        for (int sequence = 0; sequence < SEQUENCES; sequence++) {
            long seed = 0x5eed0000L + sequence;
            RandomCalls random = new RandomCalls(seed);
            try (Arena arena = Arena.ofShared()) {
                MemorySegment ram = arena.allocate(RAM, 4096);
                MemorySegment.copy(random.bytes((int) RAM), 0, ram, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (int) RAM);
                // Most sequences start from a working VM, so that the calls reach more than argument checks.
                if (sequence % 4 != 0) {
                    assertEquals(HV_SUCCESS, hv_vm_create(HV_VM_DEFAULT));
                    assertEquals(HV_SUCCESS, hv_vm_map(ram, 0, RAM, HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC));
                    assertEquals(HV_SUCCESS, hv_vcpu_create(new int[1], HV_VCPU_DEFAULT));
                }
                for (int i = 0; i < CALLS; i++) {
                    int result = call(random, ram);
                    calls++;
                    successes += result == HV_SUCCESS ? 1 : 0;
                    assertTrue(CODES.contains(result), "seed 0x" + Long.toHexString(seed) + ", call " + i
                            + ": 0x" + Integer.toHexString(result));
                }
                for (int vcpu = 0; vcpu < 4; vcpu++) {
                    hv_vcpu_destroy(vcpu);
                }
                int destroyed = hv_vm_destroy();
                assertTrue(destroyed == HV_SUCCESS || destroyed == HV_BAD_ARGUMENT, "seed 0x" + Long.toHexString(seed));
            }
            assertEquals(HV_SUCCESS, hv_vm_create(HV_VM_DEFAULT), "a VM can be created after sequence " + sequence);
            assertEquals(HV_SUCCESS, hv_vm_destroy());
        }
        System.out.printf("facade fuzz: %d sequences, %d calls, %d succeeded, 0 crashes, 0 undefined codes%n",
                SEQUENCES, calls, successes);
    }

    private static int call(RandomCalls random, MemorySegment ram) {
        int[] id = new int[1];
        long[] out = new long[1];
        long[] out2 = new long[1];
        int vcpu = random.operation(3);
        int field = random.field(VMCS_GUEST_RIP, VMCS_GUEST_CR0, VMCS_GUEST_CR4, VMCS_GUEST_CS_AR, VMCS_GUEST_TR_AR,
                VMCS_CTRL_CPU_BASED, VMCS_CTRL_PIN_BASED, VMCS_CTRL_VMENTRY_IRQ_INFO, VMCS_CTRL_VMENTRY_CONTROLS,
                VMCS_GUEST_IA32_EFER, VMCS_GUEST_INTERRUPTIBILITY, VMCS_CTRL_EXC_BITMAP, VMCS_RO_EXIT_REASON,
                VMCS_GUEST_ACTIVITY_STATE, HV_X86_RIP, HV_X86_CR0, HV_X86_XCR0, HV_X86_TPR, 0x10, 0xc0000080, 0x174);
        long a = random.value();
        long b = random.value();
        return switch (random.operation(23)) {
            case 0 -> hv_vm_create(a & 0xff);
            case 1 -> hv_vm_destroy();
            case 2 -> hv_vm_map(ram, a & ~0xfffL & 0xfffffffffL, Math.floorMod(b, RAM + 8192), a & 0x1f);
            case 3 -> hv_vm_unmap(a, b);
            case 4 -> hv_vm_protect(a, b, random.value());
            case 5 -> hv_vcpu_create(id, a & 3);
            case 6 -> hv_vcpu_destroy(vcpu);
            case 7 -> hv_vcpu_read_register(vcpu, field, out);
            case 8 -> hv_vcpu_write_register(vcpu, field, a);
            case 9 -> hv_vmx_vcpu_read_vmcs(vcpu, field, out);
            case 10 -> hv_vmx_vcpu_write_vmcs(vcpu, field, a);
            case 11 -> hv_vmx_vcpu_get_cap_write_vmcs(vcpu, field, out, out2);
            case 12 -> hv_vmx_read_capability(field, out);
            case 13 -> hv_vcpu_run_until(vcpu, System.nanoTime() + 1_000_000);
            case 14 -> hv_vcpu_interrupt(new int[] {vcpu}, 1);
            case 15 -> hv_vcpu_read_msr(vcpu, field, out);
            case 16 -> hv_vcpu_write_msr(vcpu, field, a);
            case 17 -> hv_vcpu_read_fpstate(vcpu, ram, a & 0x3fff);
            case 18 -> hv_vcpu_write_fpstate(vcpu, ram, a & 0x3fff);
            case 19 -> hv_vcpu_enable_native_msr(vcpu, field, a > 0);
            case 20 -> hv_capability(a & 3, out);
            case 21 -> hv_vcpu_invalidate_tlb(vcpu);
            default -> hv_vmx_vcpu_set_apic_address(vcpu, a);
        };
    }
}
