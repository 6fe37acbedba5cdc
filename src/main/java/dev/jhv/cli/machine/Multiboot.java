package dev.jhv.cli.machine;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED;
import static java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED;

/**
 * Multiboot v1, as QEMU's {@code -kernel} implements it: finds the header, loads an ELF32/ELF64
 * kernel (or an image with the address fields of the header), places the modules and writes the
 * boot information (memory sizes and map, command line, modules, boot loader name).
 */
final class Multiboot {
    static final int HEADER_MAGIC = 0x1badb002;
    static final int BOOTLOADER_MAGIC = 0x2badb002;
    private static final int SEARCH_BYTES = 8192;
    private static final int FLAG_ADDRESS_FIELDS = 1 << 16;

    /** Where the boot information goes: below 640 KiB, away from where kernels load. */
    static final long INFO_ADDRESS = 0x9000;
    private static final long MMAP_ADDRESS = 0x9100;
    private static final long MODULES_ADDRESS = 0x9200;
    private static final long STRINGS_ADDRESS = 0x9800;
    private static final long INFO_END = 0x10000;
    private static final long LOW_MEMORY_END = 0x9fc00;

    /** A module file: its bytes, and the string the kernel sees for it. */
    record Module(byte[] bytes, String name) {}

    /** What loading produced: the entry point and the end of the loaded image. */
    record Loaded(long entry, long end) {}

    private Multiboot() {}

    /** The offset of a valid Multiboot header in the first 8 KiB, or -1. */
    static int findHeader(byte[] image) {
        ByteBuffer buffer = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at + 12 <= Math.min(image.length, SEARCH_BYTES); at += 4) {
            int magic = buffer.getInt(at);
            int flags = buffer.getInt(at + 4);
            int checksum = buffer.getInt(at + 8);
            if (magic == HEADER_MAGIC && magic + flags + checksum == 0) {
                return at;
            }
        }
        return -1;
    }

    /** Loads the kernel into {@code ram}; throws with the reason when it does not fit or is malformed. */
    static Loaded load(byte[] image, int header, MemorySegment ram) {
        ByteBuffer buffer = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
        int flags = buffer.getInt(header + 4);
        if ((flags & FLAG_ADDRESS_FIELDS) != 0) {
            long headerAddress = Integer.toUnsignedLong(buffer.getInt(header + 12));
            long loadAddress = Integer.toUnsignedLong(buffer.getInt(header + 16));
            long loadEnd = Integer.toUnsignedLong(buffer.getInt(header + 20));
            long bssEnd = Integer.toUnsignedLong(buffer.getInt(header + 24));
            long entry = Integer.toUnsignedLong(buffer.getInt(header + 28));
            long fileStart = header - (headerAddress - loadAddress);
            long length = loadEnd == 0 ? image.length - fileStart : loadEnd - loadAddress;
            copy(image, fileStart, ram, loadAddress, length);
            long end = Math.max(loadAddress + length, bssEnd);
            return new Loaded(entry, end);
        }
        return loadElf(buffer, image, ram);
    }

    private static Loaded loadElf(ByteBuffer elf, byte[] image, MemorySegment ram) {
        if (image.length < 52 || elf.getInt(0) != 0x464c457f) {
            throw new IllegalArgumentException("a Multiboot kernel without address fields must be an ELF file");
        }
        boolean wide = image[4] == 2;
        long entry = wide ? elf.getLong(24) : Integer.toUnsignedLong(elf.getInt(24));
        long headers = wide ? elf.getLong(32) : Integer.toUnsignedLong(elf.getInt(28));
        int headerSize = Short.toUnsignedInt(elf.getShort(wide ? 54 : 42));
        int count = Short.toUnsignedInt(elf.getShort(wide ? 56 : 44));
        long end = 0;
        long physicalEntry = entry;
        for (int i = 0; i < count; i++) {
            int at = (int) (headers + (long) i * headerSize);
            if (elf.getInt(at) != 1) {   // PT_LOAD
                continue;
            }
            long offset = wide ? elf.getLong(at + 8) : Integer.toUnsignedLong(elf.getInt(at + 4));
            long virtual = wide ? elf.getLong(at + 16) : Integer.toUnsignedLong(elf.getInt(at + 8));
            long physical = wide ? elf.getLong(at + 24) : Integer.toUnsignedLong(elf.getInt(at + 12));
            long fileSize = wide ? elf.getLong(at + 32) : Integer.toUnsignedLong(elf.getInt(at + 16));
            long memorySize = wide ? elf.getLong(at + 40) : Integer.toUnsignedLong(elf.getInt(at + 20));
            copy(image, offset, ram, physical, fileSize);
            requireRam(ram, physical, memorySize);
            ram.asSlice(physical + fileSize, memorySize - fileSize).fill((byte) 0);
            end = Math.max(end, physical + memorySize);
            if (entry >= virtual && entry < virtual + memorySize) {
                physicalEntry = entry - virtual + physical;   // a higher-half kernel starts at its physical address
            }
        }
        if (end == 0) {
            throw new IllegalArgumentException("the ELF file has no loadable segment");
        }
        return new Loaded(physicalEntry, end);
    }

    private static void copy(byte[] image, long from, MemorySegment ram, long to, long length) {
        if (from < 0 || length < 0 || from + length > image.length) {
            throw new IllegalArgumentException("the kernel file is shorter than its headers say");
        }
        requireRam(ram, to, length);
        MemorySegment.copy(image, (int) from, ram, JAVA_BYTE, to, (int) length);
    }

    private static void requireRam(MemorySegment ram, long address, long length) {
        if (address < INFO_END || address + length > ram.byteSize()) {
            throw new IllegalArgumentException(String.format("the kernel wants [0x%x, 0x%x), outside the RAM given"
                    + " (0x%x-0x%x): use --mem", address, address + length, INFO_END, ram.byteSize()));
        }
    }

    /**
     * Places the modules after the kernel (page-aligned) and writes the boot information; returns
     * its address, for EBX.
     */
    static long writeInfo(MemorySegment ram, long kernelEnd, String commandLine, List<Module> modules) {
        long ramBytes = ram.byteSize();
        long strings = STRINGS_ADDRESS;
        ram.asSlice(INFO_ADDRESS, INFO_END - INFO_ADDRESS).fill((byte) 0);
        long commandLineAddress = strings;
        strings = string(ram, strings, commandLine);
        long loaderName = strings;
        strings = string(ram, strings, "jhv");

        long next = align(kernelEnd);
        for (int i = 0; i < modules.size(); i++) {
            Module module = modules.get(i);
            requireRam(ram, next, module.bytes().length);
            MemorySegment.copy(module.bytes(), 0, ram, JAVA_BYTE, next, module.bytes().length);
            long entry = MODULES_ADDRESS + 16L * i;
            ram.set(JAVA_INT_UNALIGNED, entry, (int) next);
            ram.set(JAVA_INT_UNALIGNED, entry + 4, (int) (next + module.bytes().length));
            ram.set(JAVA_INT_UNALIGNED, entry + 8, (int) strings);
            strings = string(ram, strings, module.name());
            next = align(next + module.bytes().length);
        }
        if (strings > INFO_END) {
            throw new IllegalArgumentException("the command line and module names are too long");
        }

        long[][] map = {{0, LOW_MEMORY_END, 1}, {LOW_MEMORY_END, 0xa0000 - LOW_MEMORY_END, 2},
            {0xf0000, 0x10000, 2}, {0x100000, ramBytes - 0x100000, 1}};
        for (int i = 0; i < map.length; i++) {
            long entry = MMAP_ADDRESS + 24L * i;
            ram.set(JAVA_INT_UNALIGNED, entry, 20);
            ram.set(JAVA_LONG_UNALIGNED, entry + 4, map[i][0]);
            ram.set(JAVA_LONG_UNALIGNED, entry + 12, map[i][1]);
            ram.set(JAVA_INT_UNALIGNED, entry + 20, (int) map[i][2]);
        }

        int flags = 1 << 0 | 1 << 2 | 1 << 3 | 1 << 6 | 1 << 9;   // memory, cmdline, mods, mmap, loader name
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS, flags);
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 4, (int) (LOW_MEMORY_END / 1024));
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 8, (int) ((ramBytes - 0x100000) / 1024));
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 16, (int) commandLineAddress);
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 20, modules.size());
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 24, (int) MODULES_ADDRESS);
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 44, 24 * map.length);
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 48, (int) MMAP_ADDRESS);
        ram.set(JAVA_INT_UNALIGNED, INFO_ADDRESS + 64, (int) loaderName);
        return INFO_ADDRESS;
    }

    private static long string(MemorySegment ram, long at, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.US_ASCII);
        if (at + bytes.length + 1 > INFO_END) {
            throw new IllegalArgumentException("the command line and module names are too long");
        }
        MemorySegment.copy(bytes, 0, ram, JAVA_BYTE, at, bytes.length);
        ram.set(JAVA_BYTE, at + bytes.length, (byte) 0);
        return at + bytes.length + 1;
    }

    private static long align(long address) {
        return (address + 0xfff) & ~0xfffL;
    }
}
