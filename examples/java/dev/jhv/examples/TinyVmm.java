package dev.jhv.examples;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

import dev.jhv.vmx.InstructionDecoder;

import static dev.jhv.hv.Hv.*;

/**
 * A tiny VMM in the style of hvdos and xhyve, written only against the C-style facade: its own
 * vCPU thread and run loop, a serial port, a device page emulated by decoding the guest's MOV
 * instructions, a timer interrupt injected through the VM-entry interruption field (waiting for
 * the interrupt window when the guest cannot take it), and an exit port.
 *
 * <p>Run it with a flat real-mode image that starts at 0x1000:
 * {@code java -cp ... dev.jhv.examples.TinyVmm guest.bin}.
 */
public final class TinyVmm {
    private static final long RAM_SIZE = 1 << 20;
    private static final long DEVICE_PAGE = 0xd0000;
    private static final int COM1 = 0x3f8;
    private static final int EXIT_PORT = 0xf4;
    private static final int TIMER_VECTOR = 0x20;

    /** What the guest printed, and the status it left with. */
    public record Result(String console, int status) {}

    private final MemorySegment ram;
    private final StringBuilder console = new StringBuilder();
    private boolean timerPending;

    private TinyVmm(MemorySegment ram) {
        this.ram = ram;
    }

    public static void main(String[] args) throws Exception {
        Result result = run(Files.readAllBytes(Path.of(args[0])));
        System.out.print(result.console());
        System.exit(result.status());
    }

    /** Boots {@code image} and runs it to its exit port, on a vCPU thread of its own. */
    public static Result run(byte[] image) throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment ram = arena.allocate(RAM_SIZE, 4096);
            MemorySegment.copy(image, 0, ram, ValueLayout.JAVA_BYTE, 0, image.length);
            check(hv_vm_create(HV_VM_DEFAULT), "hv_vm_create");
            try {
                long rwx = HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC;
                check(hv_vm_map(ram, 0, DEVICE_PAGE, rwx), "hv_vm_map");                 // RAM below the device
                check(hv_vm_map(ram.asSlice(DEVICE_PAGE + 4096), DEVICE_PAGE + 4096, RAM_SIZE - DEVICE_PAGE - 4096, rwx),
                        "hv_vm_map");                                                  // and above it
                TinyVmm vmm = new TinyVmm(ram);
                Result[] result = new Result[1];
                Exception[] failure = new Exception[1];
                Thread vcpuThread = new Thread(() -> {
                    try {
                        result[0] = vmm.vcpuThread();
                    } catch (Exception e) {
                        failure[0] = e;
                    }
                }, "vcpu0");
                vcpuThread.start();
                vcpuThread.join();
                if (failure[0] != null) {
                    throw failure[0];
                }
                return result[0];
            } finally {
                check(hv_vm_destroy(), "hv_vm_destroy");
            }
        }
    }

    private Result vcpuThread() {
        int[] id = new int[1];
        check(hv_vcpu_create(id, HV_VCPU_DEFAULT), "hv_vcpu_create");
        int vcpu = id[0];
        try {
            reset(vcpu);
            return runLoop(vcpu);
        } finally {
            check(hv_vcpu_destroy(vcpu), "hv_vcpu_destroy");
        }
    }

    /** Real mode at 0000:1000, the controls made valid with cap2ctrl as every client does. */
    private static void reset(int vcpu) {
        write(vcpu, VMCS_CTRL_PIN_BASED, cap2ctrl(HV_VMX_CAP_PINBASED, PIN_BASED_INTR | PIN_BASED_NMI));
        write(vcpu, VMCS_CTRL_CPU_BASED, cap2ctrl(HV_VMX_CAP_PROCBASED, CPU_BASED_HLT));
        write(vcpu, VMCS_CTRL_CPU_BASED2, cap2ctrl(HV_VMX_CAP_PROCBASED2, 0));
        write(vcpu, VMCS_CTRL_VMENTRY_CONTROLS, cap2ctrl(HV_VMX_CAP_ENTRY, 0));
        write(vcpu, VMCS_GUEST_CR0, 0x30);
        write(vcpu, VMCS_GUEST_CR4, 0x2000);
        int[][] segments = {
            {VMCS_GUEST_CS, VMCS_GUEST_CS_BASE, VMCS_GUEST_CS_LIMIT, VMCS_GUEST_CS_AR, 0x9b},
            {VMCS_GUEST_DS, VMCS_GUEST_DS_BASE, VMCS_GUEST_DS_LIMIT, VMCS_GUEST_DS_AR, 0x93},
            {VMCS_GUEST_ES, VMCS_GUEST_ES_BASE, VMCS_GUEST_ES_LIMIT, VMCS_GUEST_ES_AR, 0x93},
            {VMCS_GUEST_SS, VMCS_GUEST_SS_BASE, VMCS_GUEST_SS_LIMIT, VMCS_GUEST_SS_AR, 0x93}};
        for (int[] segment : segments) {
            write(vcpu, segment[0], 0);
            write(vcpu, segment[1], 0);
            write(vcpu, segment[2], 0xffff);
            write(vcpu, segment[3], segment[4]);
        }
        write(vcpu, VMCS_GUEST_IDTR_LIMIT, 0x3ff);
        write(vcpu, VMCS_GUEST_RFLAGS, 0x2);
        write(vcpu, VMCS_GUEST_RIP, 0x1000);
    }

    private Result runLoop(int vcpu) {
        for (;;) {
            injectTimer(vcpu);
            check(hv_vcpu_run_until(vcpu, HV_DEADLINE_FOREVER), "hv_vcpu_run_until");
            long reason = read(vcpu, VMCS_RO_EXIT_REASON) & 0xffff;
            long qualification = read(vcpu, VMCS_RO_EXIT_QUALIFIC);
            switch ((int) reason) {
                case VMX_REASON_IO -> {
                    int port = (int) (qualification >>> 16);
                    boolean in = (qualification & 8) != 0;
                    long rax = register(vcpu, HV_X86_RAX);
                    if (!in && port == EXIT_PORT) {
                        return new Result(console.toString(), (int) (rax & 0xff));
                    }
                    if (!in && port == COM1) {
                        console.append((char) (rax & 0xff));
                    } else if (in) {
                        writeRegister(vcpu, HV_X86_RAX, rax & ~0xffL | 0xff);   // nothing on other ports
                    }
                    advance(vcpu);
                }
                case VMX_REASON_EPT_VIOLATION -> emulateDeviceAccess(vcpu, read(vcpu, VMCS_GUEST_PHYSICAL_ADDRESS));
                case VMX_REASON_HLT -> {
                    timerPending = true;    // a sleeping guest gets its next tick
                    advance(vcpu);
                }
                case VMX_REASON_IRQ_WND -> write(vcpu, VMCS_CTRL_CPU_BASED,
                        read(vcpu, VMCS_CTRL_CPU_BASED) & ~CPU_BASED_IRQ_WND);
                case VMX_REASON_IRQ -> { }   // a kick: nothing to do
                default -> throw new IllegalStateException("unhandled exit reason " + reason + " at RIP 0x"
                        + Long.toHexString(register(vcpu, HV_X86_RIP)));
            }
        }
    }

    /** Injects the timer interrupt when the guest can take it, else asks for the interrupt window. */
    private void injectTimer(int vcpu) {
        if (!timerPending) {
            return;
        }
        boolean interruptible = (register(vcpu, HV_X86_RFLAGS) & 0x200) != 0
                && (read(vcpu, VMCS_GUEST_INTERRUPTIBILITY) & (GUEST_INTRBILITY_STI_BLOCKING
                | GUEST_INTRBILITY_MOVSS_BLOCKING)) == 0;
        if (interruptible) {
            write(vcpu, VMCS_CTRL_VMENTRY_IRQ_INFO, IRQ_INFO_VALID | IRQ_INFO_EXT_IRQ | TIMER_VECTOR);
            timerPending = false;
        } else {
            write(vcpu, VMCS_CTRL_CPU_BASED, read(vcpu, VMCS_CTRL_CPU_BASED) | CPU_BASED_IRQ_WND);
        }
    }

    /**
     * The device page: a 16-bit id at offset 0 ("JV"), the number of ticks the guest should wait
     * for at offset 2, writes ignored. The instruction is decoded here, as xhyve and QEMU do.
     */
    private void emulateDeviceAccess(int vcpu, long gpa) {
        if (gpa - DEVICE_PAGE < 0 || gpa - DEVICE_PAGE >= 4096) {
            throw new IllegalStateException("guest touched unbacked memory at 0x" + Long.toHexString(gpa));
        }
        long rip = register(vcpu, HV_X86_RIP);
        byte[] code = new byte[15];
        // The guest runs with CS base 0 and no paging, so RIP is the guest-physical address of the code.
        MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, rip, code, 0, code.length);
        InstructionDecoder.Instruction insn = InstructionDecoder.decode(code, 0, code.length,
                InstructionDecoder.Mode.REAL_16);
        if (insn == null || insn.map() != 1) {
            throw new IllegalStateException("cannot decode the device access at 0x" + Long.toHexString(rip));
        }
        int size = (insn.opcode() & 1) == 0 ? 1 : insn.operandSize();
        boolean load = insn.opcode() == 0xa0 || insn.opcode() == 0xa1 || insn.opcode() == 0x8a || insn.opcode() == 0x8b;
        if (load) {
            long value = switch ((int) (gpa - DEVICE_PAGE)) {
                case 0 -> 0x564a;   // "JV"
                case 2 -> 3;
                default -> 0;
            };
            int target = insn.opcode() >= 0xa0 ? HV_X86_RAX : GPR_BY_ENCODING[insn.reg()];
            long mask = size == 1 ? 0xff : 0xffff;
            writeRegister(vcpu, target, register(vcpu, target) & ~mask | value & mask);
        }
        writeRegister(vcpu, HV_X86_RIP, rip + insn.length());
    }

    private static final int[] GPR_BY_ENCODING = {HV_X86_RAX, HV_X86_RCX, HV_X86_RDX, HV_X86_RBX, HV_X86_RSP,
        HV_X86_RBP, HV_X86_RSI, HV_X86_RDI};

    private static void advance(int vcpu) {
        writeRegister(vcpu, HV_X86_RIP, register(vcpu, HV_X86_RIP) + read(vcpu, VMCS_RO_VMEXIT_INSTR_LEN));
    }

    private static long cap2ctrl(int capability, long wanted) {
        long[] cap = new long[1];
        check(hv_vmx_read_capability(capability, cap), "hv_vmx_read_capability");
        return (wanted | (cap[0] & 0xffffffffL)) & (cap[0] >>> 32);
    }

    private static long read(int vcpu, int field) {
        long[] value = new long[1];
        check(hv_vmx_vcpu_read_vmcs(vcpu, field, value), "hv_vmx_vcpu_read_vmcs");
        return value[0];
    }

    private static void write(int vcpu, int field, long value) {
        check(hv_vmx_vcpu_write_vmcs(vcpu, field, value), "hv_vmx_vcpu_write_vmcs");
    }

    private static long register(int vcpu, int register) {
        long[] value = new long[1];
        check(hv_vcpu_read_register(vcpu, register, value), "hv_vcpu_read_register");
        return value[0];
    }

    private static void writeRegister(int vcpu, int register, long value) {
        check(hv_vcpu_write_register(vcpu, register, value), "hv_vcpu_write_register");
    }

    private static void check(int result, String call) {
        if (result != HV_SUCCESS) {
            throw new IllegalStateException(call + " failed: 0x" + Integer.toHexString(result));
        }
    }
}
