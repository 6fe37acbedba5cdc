package dev.jhv.cli.machine;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * A 16550 UART without interrupts, as small kernels drive it: the transmitter is always empty
 * (every byte written goes straight to the output), received bytes come from the input, and the
 * line status says when one is there. Registers that only configure the line are kept and have no
 * effect.
 */
final class Uart16550 implements PortDevice {
    private static final int LSR_DATA_READY = 0x01;
    private static final int LSR_TRANSMITTER_EMPTY = 0x60;
    private static final int LCR_DLAB = 0x80;

    private final int base;
    private final OutputStream output;
    private final BlockingQueue<Integer> input = new ArrayBlockingQueue<>(4096);
    private int interruptEnable;
    private int lineControl;
    private int modemControl;
    private int scratch;
    private int divisor = 1;

    Uart16550(int base, OutputStream output) {
        this.base = base;
        this.output = output;
    }

    /** Feeds the receiver from {@code source} on a daemon thread, for as long as it has bytes. */
    void connectInput(InputStream source) {
        Thread reader = new Thread(() -> {
            try {
                for (int b = source.read(); b >= 0; b = source.read()) {
                    input.put(b);
                }
            } catch (IOException | InterruptedException e) {
                // the input is gone: the guest simply sees no more data
            }
        }, "jhv-uart-input");
        reader.setDaemon(true);
        reader.start();
    }

    @Override
    public long read(int port, int size) {
        boolean dlab = (lineControl & LCR_DLAB) != 0;
        return switch (port - base) {
            case 0 -> {
                if (dlab) {
                    yield divisor & 0xff;
                }
                Integer b = input.poll();
                yield b == null ? 0 : b;
            }
            case 1 -> dlab ? divisor >> 8 & 0xff : interruptEnable;
            case 2 -> 0x01;   // IIR: no interrupt pending
            case 3 -> lineControl;
            case 4 -> modemControl;
            case 5 -> LSR_TRANSMITTER_EMPTY | (input.isEmpty() ? 0 : LSR_DATA_READY);
            case 6 -> 0xb0;   // MSR: carrier detect, data set ready, clear to send
            default -> scratch;
        };
    }

    @Override
    public void write(int port, int size, long value) {
        int b = (int) value & 0xff;
        boolean dlab = (lineControl & LCR_DLAB) != 0;
        switch (port - base) {
            case 0 -> {
                if (dlab) {
                    divisor = divisor & 0xff00 | b;
                } else {
                    transmit(b);
                }
            }
            case 1 -> {
                if (dlab) {
                    divisor = divisor & 0xff | b << 8;
                } else {
                    interruptEnable = b;
                }
            }
            case 3 -> lineControl = b;
            case 4 -> modemControl = b;
            case 7 -> scratch = b;
            default -> { }   // FCR and the read-only registers
        }
    }

    private void transmit(int b) {
        try {
            output.write(b);
            output.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
