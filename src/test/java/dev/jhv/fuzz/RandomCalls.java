package dev.jhv.fuzz;

import java.util.Random;

/**
 * Random call arguments for the fuzz tests: a mix of anything-goes values and the edge values
 * that matter here (0, page sizes, page-unaligned, negative, huge). Seeded, so a failure names
 * the seed that reproduces it.
 */
final class RandomCalls {
    private static final long[] EDGES = {0, 1, -1, 4096, 0xfff, 0x1000, 1 << 20, 0x80000000L, 0xffffffffL,
        Long.MAX_VALUE, Long.MIN_VALUE, 0xfffffffffffL};

    private final Random random;

    RandomCalls(long seed) {
        this.random = new Random(seed);
    }

    int operation(int count) {
        return random.nextInt(count);
    }

    long value() {
        return switch (random.nextInt(3)) {
            case 0 -> random.nextLong();
            case 1 -> random.nextLong(-2, 0x200000);
            default -> EDGES[random.nextInt(EDGES.length)];
        };
    }

    /** One of {@code likely}, or any int. */
    int field(int... likely) {
        return random.nextBoolean() ? likely[random.nextInt(likely.length)] : random.nextInt();
    }

    byte[] bytes(int size) {
        byte[] bytes = new byte[size];
        random.nextBytes(bytes);
        return bytes;
    }
}
