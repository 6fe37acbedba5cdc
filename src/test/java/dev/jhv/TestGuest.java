package dev.jhv;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * A test guest assembled from {@code src/test/guest/NAME.S} by the build: a flat image for
 * guest-physical address 0 and its symbol table.
 */
record TestGuest(String name, byte[] image, Map<String, Long> symbols) {
    static TestGuest load(String name) {
        return new TestGuest(name, resource(name + ".bin"), parseSymbols(new String(resource(name + ".sym"),
                StandardCharsets.US_ASCII)));
    }

    private static byte[] resource(String file) {
        try (InputStream in = TestGuest.class.getResourceAsStream("testguests/" + file)) {
            if (in == null) {
                throw new IllegalStateException("test guest " + file + " was not assembled (tools/assemble-guests.sh)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Map<String, Long> parseSymbols(String table) {
        Map<String, Long> symbols = new HashMap<>();
        for (String line : table.split("\n")) {
            String[] parts = line.trim().split(" ");
            if (parts.length == 2) {
                symbols.put(parts[1], Long.parseUnsignedLong(parts[0], 16));
            }
        }
        return symbols;
    }

    long symbol(String name) {
        Long value = symbols.get(name);
        if (value == null) {
            throw new IllegalArgumentException(name() + " has no symbol " + name);
        }
        return value;
    }

    /** Copies the image into guest memory at offset 0. */
    void loadInto(MemorySegment memory) {
        MemorySegment.copy(image, 0, memory, ValueLayout.JAVA_BYTE, 0, image.length);
    }
}
