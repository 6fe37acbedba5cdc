package dev.jhv;

// README:begin
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Runs four bytes of real-mode code that print "hi" on a serial port, then halt. */
public class ReadmeExample {
    public static String hello() {
        byte[] code = {
            (byte) 0xba, (byte) 0xf8, 0x03,      // mov dx, 0x3f8
            (byte) 0xb0, 'h', (byte) 0xee,       // mov al, 'h'; out dx, al
            (byte) 0xb0, 'i', (byte) 0xee,       // mov al, 'i'; out dx, al
            (byte) 0xf4                          // hlt
        };
        try (VirtualMachine vm = VirtualMachine.create();
             GuestMemory ram = GuestMemory.allocate(1 << 20)) {
            MemorySegment.copy(code, 0, ram.segment(), ValueLayout.JAVA_BYTE, 0x1000, code.length);
            vm.map(0, ram, Protection.ALL);
            try (Vcpu vcpu = vm.createVcpu()) {        // owned by this thread
                vcpu.setSegment(SegmentRegister.CS, Segment.real(0, true));
                vcpu.set(Register.RIP, 0x1000);
                StringBuilder serial = new StringBuilder();
                for (;;) {
                    switch (vcpu.run()) {
                        case VmExit.PortIo io when io.port() == 0x3f8 && !io.isIn() ->
                                serial.append((char) io.value());
                        case VmExit.Halt halt -> {
                            return serial.toString();
                        }
                        case VmExit exit -> throw new IllegalStateException("unexpected exit: " + exit);
                    }
                }
            }
        }
    }
}
// README:end
