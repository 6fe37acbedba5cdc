package dev.jhv;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import dev.jhv.internal.kvm.KvmVcpu;

import static dev.jhv.internal.kvm.KvmStructs.KVM_CPUID2;
import static dev.jhv.internal.kvm.KvmStructs.KVM_CPUID_ENTRY2;
import static dev.jhv.internal.kvm.KvmStructs.offset;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * What a guest's CPUID instruction returns, leaf by leaf.
 *
 * <p>KVM answers CPUID inside the kernel (there is no CPUID exit to the client), so the client
 * decides the answers in advance with {@link Vcpu#setCpuid}. Each new vCPU starts with
 * {@link #hostSupported()} with its own APIC id filled in.
 *
 * <pre>{@code
 * CpuidTable table = vcpu.cpuid().with(new CpuidTable.Entry(0x40000000, 0, 0, 0x40000001,
 *         0x4a564844, 0x4a564844, 0x4a564844));   // hypervisor leaf "DHVJ" x3
 * vcpu.setCpuid(table);
 * }</pre>
 */
public final class CpuidTable {
    /** {@code KVM_CPUID_FLAG_SIGNIFCANT_INDEX}: the entry applies to one sub-leaf ({@code index}) only. */
    public static final int SIGNIFICANT_INDEX = 1;

    /** One leaf (and sub-leaf) and the four registers CPUID returns for it. */
    public record Entry(int function, int index, int flags, int eax, int ebx, int ecx, int edx) {}

    private static final long ENTRIES = offset(KVM_CPUID2, "entries");
    private static final long[] FIELDS = java.util.stream.Stream.of("function", "index", "flags", "eax", "ebx", "ecx", "edx")
            .mapToLong(name -> offset(KVM_CPUID_ENTRY2, name)).toArray();
    private static final long ENTRY_BYTES = KVM_CPUID_ENTRY2.byteSize();
    private static final int MAX_ENTRIES = 256;

    private final List<Entry> entries;

    public CpuidTable(List<Entry> entries) {
        if (entries.size() > MAX_ENTRIES) {
            throw HvException.badArgument("a CPUID table has at most " + MAX_ENTRIES + " entries");
        }
        this.entries = List.copyOf(entries);
    }

    /** Every leaf KVM can give a guest on this host (KVM_GET_SUPPORTED_CPUID). */
    public static CpuidTable hostSupported() {
        return HostSupported.TABLE;
    }

    private static final class HostSupported {
        static final CpuidTable TABLE = load();

        private static CpuidTable load() {
            try (Arena arena = Arena.ofConfined()) {
                return fromKvm(Hypervisor.system().supportedCpuid(arena));
            }
        }
    }

    public List<Entry> entries() {
        return entries;
    }

    /** The entry for a leaf and sub-leaf, or null. */
    public Entry find(int function, int index) {
        for (Entry entry : entries) {
            if (entry.function() == function
                    && ((entry.flags() & SIGNIFICANT_INDEX) == 0 || entry.index() == index)) {
                return entry;
            }
        }
        return null;
    }

    /** A copy with {@code entry} replacing the entry of the same leaf and sub-leaf, or added. */
    public CpuidTable with(Entry entry) {
        List<Entry> copy = new ArrayList<>(entries.size() + 1);
        boolean replaced = false;
        for (Entry existing : entries) {
            if (existing.function() == entry.function() && existing.index() == entry.index()) {
                copy.add(entry);
                replaced = true;
            } else {
                copy.add(existing);
            }
        }
        if (!replaced) {
            copy.add(entry);
        }
        return new CpuidTable(copy);
    }

    /** This table as the vCPU with APIC id {@code apicId} should see it (leaves 1, 0xB and 0x1F). */
    CpuidTable forApicId(int apicId) {
        List<Entry> copy = new ArrayList<>(entries.size());
        for (Entry e : entries) {
            copy.add(switch (e.function()) {
                case 0x1 -> new Entry(e.function(), e.index(), e.flags(), e.eax(),
                        (e.ebx() & 0x00ffffff) | apicId << 24, e.ecx(), e.edx());
                case 0xb, 0x1f -> new Entry(e.function(), e.index(), e.flags(), e.eax(), e.ebx(), e.ecx(), apicId);
                default -> e;
            });
        }
        return new CpuidTable(copy);
    }

    MemorySegment toKvm(Arena arena) {
        MemorySegment table = arena.allocate(ENTRIES + entries.size() * ENTRY_BYTES, 8);
        table.set(JAVA_INT, 0, entries.size());
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            long at = ENTRIES + i * ENTRY_BYTES;
            int[] values = {e.function(), e.index(), e.flags(), e.eax(), e.ebx(), e.ecx(), e.edx()};
            for (int field = 0; field < values.length; field++) {
                table.set(JAVA_INT, at + FIELDS[field], values[field]);
            }
        }
        return table;
    }

    static CpuidTable fromKvm(MemorySegment table) {
        int count = table.get(JAVA_INT, 0);
        List<Entry> entries = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            long at = ENTRIES + i * ENTRY_BYTES;
            entries.add(new Entry(table.get(JAVA_INT, at + FIELDS[0]), table.get(JAVA_INT, at + FIELDS[1]),
                    table.get(JAVA_INT, at + FIELDS[2]), table.get(JAVA_INT, at + FIELDS[3]),
                    table.get(JAVA_INT, at + FIELDS[4]), table.get(JAVA_INT, at + FIELDS[5]),
                    table.get(JAVA_INT, at + FIELDS[6])));
        }
        return new CpuidTable(entries);
    }

    static CpuidTable read(KvmVcpu vcpu) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment table = arena.allocate(ENTRIES + MAX_ENTRIES * ENTRY_BYTES, 8);
            table.set(JAVA_INT, 0, MAX_ENTRIES);
            vcpu.getCpuid2(table);
            return fromKvm(table);
        }
    }
}
