package dev.jhv.vmx;

import java.util.HexFormat;

import org.junit.jupiter.api.Test;

import dev.jhv.vmx.InstructionDecoder.Instruction;
import dev.jhv.vmx.InstructionDecoder.Mode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Instruction lengths and fields, checked against what GNU as emits for the same instructions. */
class InstructionDecoderTest {
    private static Instruction decode(String hex, Mode mode) {
        byte[] bytes = HexFormat.of().parseHex(hex);
        return InstructionDecoder.decode(bytes, 0, bytes.length, mode);
    }

    private static void length(int expected, String hex, Mode mode) {
        Instruction instruction = decode(hex, mode);
        assertEquals(expected, instruction == null ? -1 : instruction.length(), hex + " in " + mode);
    }

    @Test
    void lengthsInLongMode() {
        length(3, "488937", Mode.LONG_64);                 // mov [rdi], rsi
        length(8, "48890425" + "00000010", Mode.LONG_64);  // mov [0x10000000], rax
        length(10, "48b8" + "0123456789abcdef", Mode.LONG_64); // movabs rax, imm64
        length(7, "c7401000000000", Mode.LONG_64);         // mov dword [rax+0x10], 0
        length(2, "e710", Mode.LONG_64);                   // out 0x10, eax
        length(1, "ee", Mode.LONG_64);                     // out dx, al
        length(4, "0f1f4000", Mode.LONG_64);               // nop dword [rax]
        length(5, "66480f6ec0", Mode.LONG_64);             // movq xmm0, rax
        length(4, "c5fa6f07", Mode.LONG_64);               // vmovdqu xmm0, [rdi]
        length(6, "0f8500000000", Mode.LONG_64);           // jne rel32
        length(7, "488b0500000000", Mode.LONG_64);         // mov rax, [rip+0]
    }

    @Test
    void lengthsInSixteenAndThirtyTwoBitCode() {
        length(4, "26a22000", Mode.REAL_16);               // mov es:[0x20], al
        length(3, "ba f803".replace(" ", ""), Mode.REAL_16); // mov dx, 0x3f8
        length(6, "66b878563412", Mode.REAL_16);           // mov eax, 0x12345678
        length(5, "a300000000", Mode.PROTECTED_32);        // mov [0], eax
        length(6, "8b1d00000000", Mode.PROTECTED_32);      // mov ebx, [0]
        length(2, "f36e", Mode.REAL_16);                   // rep outsb
    }

    @Test
    void fieldsAndIncompleteInput() {
        Instruction store = decode("26a22000", Mode.REAL_16);
        assertEquals(0xa2, store.opcode());
        assertEquals(0x20, store.immediate(), "the moffs address");
        assertEquals(0x26, store.segmentPrefix());
        Instruction mov = decode("488937", Mode.LONG_64);
        assertEquals(8, mov.operandSize());
        assertTrue(mov.memoryOperand());
        assertEquals(6, mov.reg(), "RSI");
        assertNull(decode("4889", Mode.LONG_64), "ModRM missing");
        assertNull(decode("48b80123", Mode.LONG_64), "immediate cut short");
    }
}
