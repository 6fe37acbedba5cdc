package dev.jhv;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import dev.jhv.cli.GuestImage;

/** A test guest assembled from {@code src/test/guest/NAME.S} by the build. */
record TestGuest(GuestImage guest) {
    static TestGuest load(String name) {
        return new TestGuest(GuestImage.resource("/dev/jhv/testguests", name));
    }

    long symbol(String name) {
        return guest.symbol(name);
    }

    /** Copies the image into guest memory at offset 0. */
    void loadInto(MemorySegment memory) {
        byte[] image = guest.image();
        MemorySegment.copy(image, 0, memory, ValueLayout.JAVA_BYTE, 0, image.length);
    }
}
