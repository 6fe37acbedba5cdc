package dev.jhv;

/** A VM with 4 MiB of RAM at guest-physical 0 holding a test guest, and one vCPU on this thread. */
final class Fixture implements AutoCloseable {
    static final long RAM_BYTES = 4 << 20;

    final TestGuest guest;
    final VirtualMachine vm;
    final GuestMemory ram;
    final Vcpu vcpu;

    Fixture(String guestName) {
        guest = TestGuest.load(guestName);
        vm = VirtualMachine.create();
        ram = GuestMemory.allocate(RAM_BYTES);
        guest.loadInto(ram.segment());
        vm.map(0, ram, Protection.ALL);
        vcpu = vm.createVcpu();
    }

    /** The long-mode guest, its vCPU at {@code entry} in ring {@code ring} (0 or 3). */
    static Fixture longMode(int ring, String entry) {
        Fixture fixture = new Fixture("long");
        if (ring == 0) {
            LongMode.ring0(fixture.vcpu, fixture.guest, entry);
        } else {
            LongMode.ring3(fixture.vcpu, fixture.guest, entry);
        }
        return fixture;
    }

    long symbol(String name) {
        return guest.symbol(name);
    }

    @Override
    public void close() {
        vm.close();
        ram.close();
    }
}
