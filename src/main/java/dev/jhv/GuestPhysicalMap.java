package dev.jhv;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import dev.jhv.internal.kvm.KvmCaps;
import dev.jhv.internal.kvm.KvmVm;
import dev.jhv.internal.linux.Errno;
import dev.jhv.internal.linux.Libc;

/**
 * A VM's guest-physical address space: the mapped ranges with their host memory and protection,
 * each backed by one KVM memory slot (none for {@link Protection#NONE}).
 *
 * <p>Apple's rules: page-granular; a new mapping may not overlap an existing one; unmap and
 * protect apply to ranges that are completely mapped, and split mappings they cover in part.
 */
final class GuestPhysicalMap {
    private static final long PAGE = Libc.PAGE_SIZE;

    /** A mapped range. {@code owner} is the jhv-owned memory it belongs to, or null for caller memory. */
    record Region(long gpa, long size, MemorySegment host, Protection protection, int slot, GuestMemory owner) {
        long end() {
            return gpa + size;
        }

        boolean contains(long address) {
            return address >= gpa && address - gpa < size;
        }
    }

    private final KvmVm kvm;
    private final int slotLimit;
    private final TreeMap<Long, Region> regions = new TreeMap<>();
    private final BitSet usedSlots = new BitSet();
    /** One segment per distinct scope of caller memory, kept alive while vCPUs run; see {@link #keepAlive()}. */
    private volatile MemorySegment[] keepAlive = new MemorySegment[0];

    GuestPhysicalMap(KvmVm kvm, int slotLimit) {
        this.kvm = kvm;
        this.slotLimit = slotLimit;
    }

    synchronized void map(long gpa, MemorySegment host, Protection protection, GuestMemory owner) {
        long size = host.byteSize();
        requireRange(gpa, size);
        protection.requireExpressible();
        if (host.address() % PAGE != 0) {
            throw HvException.badArgument("host memory at 0x" + Long.toHexString(host.address())
                    + " is not page aligned");
        }
        if (host.isReadOnly() && protection.write()) {
            throw HvException.badArgument("a read-only segment cannot be mapped writable");
        }
        Map.Entry<Long, Region> before = regions.floorEntry(gpa + size - 1);
        if (before != null && before.getValue().end() > gpa) {
            throw HvException.badArgument("guest range " + range(gpa, size) + " overlaps the mapping "
                    + range(before.getKey(), before.getValue().size()) + "; unmap it first");
        }
        MemorySegment[] newKeepAlive = owner == null ? keepAliveWith(host) : keepAlive;
        requireFreeSlots(protection.equals(Protection.NONE) ? 0 : 1);
        if (owner != null && !owner.retain()) {
            throw HvException.badArgument("guest memory is closed");
        }
        try {
            add(new Region(gpa, size, host, protection, -1, owner));
        } catch (RuntimeException e) {
            if (owner != null) {
                owner.release();
            }
            throw e;
        }
        keepAlive = newKeepAlive;
    }

    synchronized void unmap(long gpa, long size) {
        requireRange(gpa, size);
        List<Region> covered = coveredRegions(gpa, size);
        requireFreeSlots(covered.size());
        for (Region region : covered) {
            remove(region);
            keepPartsOutside(region, gpa, size);
        }
        keepAlive = collectKeepAlive();
    }

    synchronized void protect(long gpa, long size, Protection protection) {
        requireRange(gpa, size);
        protection.requireExpressible();
        List<Region> covered = coveredRegions(gpa, size);
        for (Region region : covered) {
            if (region.host().isReadOnly() && protection.write()) {
                throw HvException.badArgument("guest range " + range(region.gpa(), region.size())
                        + " is backed by a read-only segment and cannot be made writable");
            }
        }
        requireFreeSlots(covered.size() * 2);
        for (Region region : covered) {
            remove(region);
            keepPartsOutside(region, gpa, size);
            long start = Math.max(region.gpa(), gpa);
            long end = Math.min(region.end(), gpa + size);
            addPart(region, start, end, protection);
        }
    }

    /**
     * Makes KVM drop every guest translation it has cached for this VM, so that changes the host
     * made to guest page tables are seen. KVM offers no ioctl for that, but deleting a memory slot
     * discards all of the VM's shadow and EPT page tables; so a scratch page is added as a slot
     * above every mapping and removed again at once. It holds nothing and is read-only.
     */
    synchronized void invalidateTranslations() {
        if (scratchPage == null) {
            scratchArena = java.lang.foreign.Arena.ofShared();
            scratchPage = scratchArena.allocate(PAGE, PAGE);
        }
        long gpa = regions.isEmpty() ? SCRATCH_GPA : Math.max(SCRATCH_GPA, regions.lastEntry().getValue().end());
        int slot = usedSlots.nextClearBit(0);
        int result = kvm.setUserMemoryRegion(slot, KvmCaps.MEM_READONLY, gpa, PAGE, scratchPage.address());
        if (result < 0) {
            throw new HvException(HvReturn.ERROR, "could not make KVM drop its translations: " + Errno.describe(-result));
        }
        kvm.setUserMemoryRegion(slot, 0, gpa, 0, 0);
    }

    /** Guest-physical address of the scratch slot: high, where guests keep no memory. */
    private static final long SCRATCH_GPA = 1L << 45;
    private java.lang.foreign.Arena scratchArena;
    private MemorySegment scratchPage;

    /** The mapping that contains {@code gpa}, or null. */
    synchronized Region find(long gpa) {
        Map.Entry<Long, Region> entry = regions.floorEntry(gpa);
        return entry != null && entry.getValue().contains(gpa) ? entry.getValue() : null;
    }

    synchronized List<Region> regions() {
        return List.copyOf(regions.values());
    }

    /**
     * A segment of every distinct arena that backs caller memory. Each vCPU passes these to
     * KVM_RUN so that none of those arenas can be closed while a guest might touch its memory.
     */
    MemorySegment[] keepAlive() {
        return keepAlive;
    }

    /** Removes every mapping whose caller-owned memory is no longer alive; returns them. */
    synchronized List<Region> dropDeadCallerMemory() {
        List<Region> dead = new ArrayList<>();
        for (Region region : List.copyOf(regions.values())) {
            if (region.owner() == null && !region.host().scope().isAlive()) {
                remove(region);
                dead.add(region);
            }
        }
        keepAlive = collectKeepAlive();
        return dead;
    }

    /**
     * Forgets every mapping once the VM's file descriptor is closed: KVM has dropped the slots with
     * the VM, so deleting them one by one first (each waits for the VM's vCPUs to leave their
     * read-side sections) would only cost time. Releases jhv-owned memory.
     */
    synchronized void releaseAfterVmClosed() {
        for (Region region : regions.values()) {
            if (region.owner() != null) {
                region.owner().release();
            }
        }
        regions.clear();
        usedSlots.clear();
        keepAlive = new MemorySegment[0];
        if (scratchArena != null) {
            scratchArena.close();
            scratchArena = null;
            scratchPage = null;
        }
    }

    private void keepPartsOutside(Region region, long gpa, long size) {
        if (region.gpa() < gpa) {
            addPart(region, region.gpa(), gpa, region.protection());
        }
        if (region.end() > gpa + size) {
            addPart(region, gpa + size, region.end(), region.protection());
        }
    }

    private void addPart(Region of, long start, long end, Protection protection) {
        MemorySegment host = of.host().asSlice(start - of.gpa(), end - start);
        if (of.owner() != null && !of.owner().retain()) {
            throw new IllegalStateException("guest memory released while mapped");
        }
        add(new Region(start, end - start, host, protection, -1, of.owner()));
    }

    private void add(Region region) {
        int slot = -1;
        if (!region.protection().equals(Protection.NONE)) {
            slot = usedSlots.nextClearBit(0);
            int flags = region.protection().write() ? 0 : KvmCaps.MEM_READONLY;
            int result = kvm.setUserMemoryRegion(slot, flags, region.gpa(), region.size(), region.host().address());
            if (result < 0) {
                throw new HvException(result == -Errno.ENOMEM ? HvReturn.NO_RESOURCES : HvReturn.BAD_ARGUMENT,
                        "KVM refused the mapping " + range(region.gpa(), region.size()) + ": "
                                + Errno.describe(-result));
            }
            usedSlots.set(slot);
        }
        regions.put(region.gpa(), new Region(region.gpa(), region.size(), region.host(), region.protection(), slot,
                region.owner()));
    }

    private void remove(Region region) {
        regions.remove(region.gpa());
        if (region.slot() >= 0) {
            int result = kvm.setUserMemoryRegion(region.slot(), 0, region.gpa(), 0, 0);
            if (result < 0) {
                throw new IllegalStateException("KVM could not delete memory slot " + region.slot() + ": "
                        + Errno.describe(-result));
            }
            usedSlots.clear(region.slot());
        }
        if (region.owner() != null) {
            region.owner().release();
        }
    }

    /** The regions that together cover [gpa, gpa+size) without a gap, in order; else an error. */
    private List<Region> coveredRegions(long gpa, long size) {
        List<Region> covered = new ArrayList<>();
        long next = gpa;
        Map.Entry<Long, Region> entry = regions.floorEntry(gpa);
        if (entry == null || !entry.getValue().contains(gpa)) {
            throw HvException.badArgument("guest range " + range(gpa, size) + " is not mapped");
        }
        for (Region region : regions.tailMap(entry.getKey(), true).values()) {
            if (region.gpa() != next && region != entry.getValue()) {
                break;
            }
            covered.add(region);
            next = region.end();
            if (next >= gpa + size) {
                return covered;
            }
        }
        throw HvException.badArgument("guest range " + range(gpa, size) + " is only partly mapped (mapped up to 0x"
                + Long.toHexString(next) + ")");
    }

    private void requireFreeSlots(int needed) {
        if (usedSlots.cardinality() + needed > slotLimit) {
            throw new HvException(HvReturn.NO_RESOURCES, "KVM allows " + slotLimit
                    + " memory slots per VM and this change needs " + needed + " more than are free");
        }
    }

    private MemorySegment[] keepAliveWith(MemorySegment host) {
        if (!host.isNative()) {
            throw HvException.badArgument("guest memory must be native memory, not a heap segment");
        }
        if (!host.scope().isAlive()) {
            throw HvException.badArgument("the segment's arena is already closed");
        }
        if (!host.isAccessibleBy(new Thread(() -> { }))) {
            throw HvException.badArgument("guest memory must be usable from every thread: allocate it from a"
                    + " shared, automatic or global arena (Arena.ofShared(), ofAuto(), global()) or use GuestMemory,"
                    + " not from a confined arena");
        }
        MemorySegment[] current = keepAlive;
        for (MemorySegment kept : current) {
            if (kept.scope().equals(host.scope())) {
                return current;
            }
        }
        if (current.length == Libc.MAX_KEEP_ALIVE) {
            throw HvException.badArgument("caller memory of a VM may come from at most " + Libc.MAX_KEEP_ALIVE
                    + " different arenas; allocate from fewer arenas or use GuestMemory");
        }
        MemorySegment[] grown = java.util.Arrays.copyOf(current, current.length + 1);
        grown[current.length] = host;
        return grown;
    }

    private MemorySegment[] collectKeepAlive() {
        List<MemorySegment> kept = new ArrayList<>();
        for (Region region : regions.values()) {
            if (region.owner() == null && kept.stream().noneMatch(k -> k.scope().equals(region.host().scope()))) {
                kept.add(region.host());
            }
        }
        return kept.toArray(MemorySegment[]::new);
    }

    private static void requireRange(long gpa, long size) {
        if (size <= 0 || size % PAGE != 0) {
            throw HvException.badArgument("size must be a positive multiple of 4096, not " + size);
        }
        if (gpa < 0 || gpa % PAGE != 0) {
            throw HvException.badArgument("guest-physical address 0x" + Long.toHexString(gpa)
                    + " is not page aligned");
        }
        if (gpa + size < gpa || gpa + size > MAX_GUEST_PHYSICAL) {
            throw HvException.badArgument("guest range " + range(gpa, size) + " is beyond the 52-bit physical"
                    + " address space");
        }
    }

    private static final long MAX_GUEST_PHYSICAL = 1L << 52;

    static String range(long gpa, long size) {
        return "[0x" + Long.toHexString(gpa) + ", 0x" + Long.toHexString(gpa + size) + ")";
    }
}
