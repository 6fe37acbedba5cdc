package dev.jhv.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * A guest assembled by the build (tools/assemble-guests.sh): a flat image for guest-physical
 * address 0, and its symbol table.
 */
public record GuestImage(String name, byte[] image, Map<String, Long> symbols) {
    /** The image {@code NAME.bin} and its symbols {@code NAME.sym} from the class-path {@code directory}. */
    public static GuestImage resource(String directory, String name) {
        return new GuestImage(name, bytes(directory, name + ".bin"),
                parseSymbols(new String(bytes(directory, name + ".sym"), StandardCharsets.US_ASCII)));
    }

    /** The built-in guests in jhv's jar. */
    static GuestImage builtIn(String name) {
        return resource("/dev/jhv/guests", name);
    }

    private static byte[] bytes(String directory, String file) {
        try (InputStream in = GuestImage.class.getResourceAsStream(directory + "/" + file)) {
            if (in == null) {
                throw new IllegalStateException("guest " + directory + "/" + file + " was not assembled"
                        + " (tools/assemble-guests.sh)");
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
        return Map.copyOf(symbols);
    }

    public long symbol(String name) {
        Long value = symbols.get(name);
        if (value == null) {
            throw new IllegalArgumentException(this.name + " has no symbol " + name);
        }
        return value;
    }
}
