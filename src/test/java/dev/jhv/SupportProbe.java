package dev.jhv;

/** Prints what {@link Hypervisor#support()} says, for tests that run it as another user. */
public final class SupportProbe {
    private SupportProbe() {}

    public static void main(String[] args) {
        Hypervisor.Support support = Hypervisor.support();
        System.out.println(support.code().appleName() + ": " + support.reason());
        System.exit(support.available() ? 0 : 1);
    }
}
