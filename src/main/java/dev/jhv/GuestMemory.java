package dev.jhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import dev.jhv.internal.linux.Libc;
import dev.jhv.internal.linux.SyscallException;

/**
 * Page-aligned host memory owned by jhv, for mapping into guests.
 *
 * <p>Closing it does not free memory a guest still uses: the pages stay until every VM has
 * unmapped them (or closed), and only then are they returned to the system. The host view,
 * {@link #segment()}, stays valid exactly as long as the pages do.
 *
 * <pre>{@code
 * try (GuestMemory ram = GuestMemory.allocate(64 << 20)) {
 *     ram.segment().set(ValueLayout.JAVA_BYTE, 0x1000, (byte) 0xf4);   // hlt
 *     vm.map(0, ram, Protection.ALL);
 * }
 * }</pre>
 */
public final class GuestMemory implements AutoCloseable {
    /** How the pages are backed. */
    public enum Backing {
        /** Private anonymous memory (the default). */
        ANONYMOUS,
        /** Anonymous memory with transparent huge pages requested ({@code MADV_HUGEPAGE}). */
        ANONYMOUS_HUGE,
        /** A {@code memfd}: shareable with other processes through its file descriptor. */
        MEMFD
    }

    private final Arena arena;
    private final MemorySegment segment;
    /** One reference for the owner until {@link #close}, plus one per guest mapping. */
    private final AtomicInteger references = new AtomicInteger(1);
    private final AtomicBoolean closed = new AtomicBoolean();

    private GuestMemory(MemorySegment mapping) {
        this.arena = Arena.ofShared();
        // The arena owns the mapping from now on: closing it unmaps the pages, and after that every
        // access through the segment fails cleanly instead of touching unmapped memory.
        this.segment = mapping.reinterpret(arena, Libc::munmap);
    }

    /** Zeroed anonymous memory of {@code size} bytes (a positive multiple of 4096). */
    public static GuestMemory allocate(long size) {
        return allocate(size, Backing.ANONYMOUS);
    }

    public static GuestMemory allocate(long size, Backing backing) {
        requirePageMultiple(size);
        try {
            return switch (backing) {
                case ANONYMOUS -> new GuestMemory(anonymous(size));
                case ANONYMOUS_HUGE -> {
                    MemorySegment mapping = anonymous(size);
                    Libc.madvise(mapping, Libc.MADV_HUGEPAGE);
                    yield new GuestMemory(mapping);
                }
                case MEMFD -> {
                    int fd = Libc.memfdCreate("jhv-guest", Libc.MFD_CLOEXEC);
                    try {
                        Libc.ftruncate(fd, size);
                        yield new GuestMemory(Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0));
                    } finally {
                        Libc.close(fd);
                    }
                }
            };
        } catch (SyscallException e) {
            throw new HvException(HvReturn.NO_RESOURCES, "cannot allocate " + size + " bytes of guest memory: "
                    + e.getMessage(), e);
        }
    }

    /**
     * Shared mapping of {@code size} bytes of a file, created or grown to that size: guest writes
     * land in the file.
     */
    public static GuestMemory mapFile(Path file, long size) {
        requirePageMultiple(size);
        int fd = Libc.open(file.toString(), Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_CREAT, 0600);
        try {
            Libc.ftruncate(fd, size);
            return new GuestMemory(Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0));
        } catch (SyscallException e) {
            throw new HvException(HvReturn.NO_RESOURCES, "cannot map " + file + ": " + e.getMessage(), e);
        } finally {
            Libc.close(fd);
        }
    }

    private static MemorySegment anonymous(long size) {
        return Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE,
                Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
    }

    private static void requirePageMultiple(long size) {
        if (size <= 0 || size % Libc.PAGE_SIZE != 0) {
            throw HvException.badArgument("guest memory size must be a positive multiple of 4096, not " + size);
        }
    }

    /** The host's view of the memory. Valid until the memory is closed and no guest maps it. */
    public MemorySegment segment() {
        return segment;
    }

    public long size() {
        return segment.byteSize();
    }

    /** Takes a reference for a guest mapping; false once the memory is closed. */
    boolean retain() {
        for (;;) {
            int count = references.get();
            if (count == 0 || closed.get()) {
                return false;
            }
            if (references.compareAndSet(count, count + 1)) {
                return true;
            }
        }
    }

    void release() {
        if (references.decrementAndGet() == 0) {
            arena.close();
        }
    }

    /** Gives up the owner's reference: the pages go when no guest maps them any more. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            release();
        }
    }

    public boolean isClosed() {
        return closed.get();
    }
}
