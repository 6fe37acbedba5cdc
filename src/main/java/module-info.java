/**
 * jhv: Apple's Hypervisor framework (Intel/VMX flavour) for Java, on Linux KVM.
 *
 * <p>{@code dev.jhv} is the idiomatic Java API, {@code dev.jhv.hv} the C-style facade with Apple's
 * names and return codes, {@code dev.jhv.vmx} the VMX model both share. The KVM backend and the
 * Linux calls it needs live in non-exported packages.
 */
module dev.jhv {
    exports dev.jhv;
    exports dev.jhv.hv;
    exports dev.jhv.vmx;

    // The command-line tool; the library itself needs nothing but the JDK.
    requires static info.picocli;
    requires static jdk.management;
    opens dev.jhv.cli to info.picocli;
    opens dev.jhv.cli.machine to info.picocli;
}
