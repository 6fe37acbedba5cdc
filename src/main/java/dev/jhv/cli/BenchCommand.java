package dev.jhv.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import dev.jhv.Hypervisor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code jhv bench}: exit round trips, register access, VM creation, kick latency and guest
 * compute speed, measured in Java and, for the same guest and work, in C with raw KVM ioctls
 * ({@code bench/native/kvmbench.c}), interleaved, with medians, spreads and the Java/C ratio.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure jhv against a C program doing the same with raw KVM ioctls, side by side.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--rounds", description = "Samples per metric and side (default: ${DEFAULT-VALUE}).")
    int rounds = 5;

    @Option(names = "--json", description = "Where to write the results as JSON (default: ${DEFAULT-VALUE}).")
    Path json = Path.of("target/bench/results.json");

    @Option(names = "--native", description = "The C reference's source (default: bench/native/kvmbench.c under"
            + " the jhv directory).")
    Path nativeSource;

    /** One row of the table. */
    record Row(String metric, String unit, double[] java, double[] c, double bytesPerOp, double ioctlsPerOp) {
        double javaMedian() {
            return median(java);
        }

        double cMedian() {
            return c == null ? Double.NaN : median(c);
        }
    }

    @Override
    public Integer call() throws Exception {
        Hypervisor.Support support = Hypervisor.support();
        if (!support.available()) {
            System.err.println("jhv bench: " + support.reason());
            return 2;
        }
        GuestImage guest = GuestImage.builtIn("bench");
        Benchmarks java = new Benchmarks(guest.image(), guest.symbols());
        NativeReference c = NativeReference.prepare(guest.image(), guest.symbols(), nativeSource);
        System.out.println("jhv bench: " + support.reason() + ", " + cpuModel() + ", Java " + Runtime.version() + ", " + rounds
                + " rounds per side" + (c == null ? "; no C reference (gcc or the source missing)" : ""));

        List<Row> rows = new ArrayList<>();
        rows.add(pair("exit round trip: OUT, real mode, idiomatic", "µs", 1e-3,
                () -> java.outExits(20_000), c == null ? null : () -> c.run("out16", 20_000)));
        rows.add(pair("exit round trip: OUT, real mode, hv_* facade", "µs", 1e-3,
                () -> java.facadeOutExits(20_000), c == null ? null : () -> c.run("out16", 20_000)));
        rows.add(pair("exit round trip: MMIO, ring 3, idiomatic", "µs", 1e-3,
                () -> java.mmioExits(5_000), c == null ? null : () -> c.run("mmio3", 5_000)));
        rows.add(pair("exit round trip: MMIO, ring 3, hv_* facade", "µs", 1e-3,
                () -> java.facadeMmioExits(5_000), c == null ? null : () -> c.run("mmio3", 5_000)));
        rows.add(pair("VM + 2 MiB + vCPU (CPUID, FP, signals) to the first exit", "µs", 1e-3,
                () -> java.creation(50), c == null ? null : () -> c.run("create", 50)));
        rows.add(pair("dec/jnz iteration: guest ring 3 (Java col.) vs host (C col.)", "ns", 1,
                () -> java.compute(1_000_000_000L), c == null ? null : () -> c.hostLoop(1_000_000_000L)));
        rows.add(pair("register read after an exit (RAX)", "ns", 1, () -> java.registerReads(10_000_000), null));
        String[] mapMetrics = {"map 1 GiB (one slot)", "protect 1 GiB read-only (slot re-made)", "unmap 1 GiB"};
        for (int i = 0; i < mapMetrics.length; i++) {
            int index = i;
            rows.add(pair(mapMetrics[i], "µs", 1e-3, () -> new Benchmarks.Sample(java.mapProtectUnmap(20)[index]),
                    c == null ? null : () -> c.values("map1g", 20).get(new String[] {"map_ns", "protect_ns", "unmap_ns"}[index])));
        }
        rows.add(pair("first guest write per 4 KiB page, 4 KiB host pages", "ns", 1, () -> java.firstTouch(false), null));
        rows.add(pair("first guest write per 4 KiB page, transparent huge pages", "ns", 1, () -> java.firstTouch(true),
                null));
        rows.add(pair("VMCS read (exit reason), hv_* facade", "ns", 1, () -> java.vmcsReads(5_000_000), null));
        rows.add(pair("kick: interrupt() to run() returning, ring 3", "µs", 1e-3, () -> java.kicks(200),
                c == null ? null : () -> c.run("kick", 200)));
        if (c != null) {
            List<String> jhvRun = List.of(ProcessHandle.current().info().command().orElse("java"),
                    "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                    "run", c.image().toString(), "--mode", "REAL", "--load", "0", "--entry",
                    "0x" + Long.toHexString(guest.symbol("hello16")), "--mem", "2M");
            rows.add(pair("cold start: process to a tiny guest's exit (jhv run vs C)", "ms", 1e-6,
                    () -> Benchmarks.coldStart(jhvRun), () -> c.coldStart()));
        }

        print(rows);
        write(rows, support);
        return 0;
    }

    /** Interleaves Java and C samples of one metric. */
    private Row pair(String metric, String unit, double scale, Supplier<Benchmarks.Sample> javaSide,
                     Supplier<Double> cSide) {
        double[] javaSamples = new double[rounds];
        double[] cSamples = cSide == null ? null : new double[rounds];
        double bytes = 0;
        double ioctls = Double.NaN;
        for (int i = 0; i < rounds; i++) {
            Benchmarks.Sample sample = javaSide.get();
            javaSamples[i] = sample.nanos() * scale;
            bytes = sample.bytes();
            ioctls = sample.ioctls();
            if (cSide != null) {
                cSamples[i] = cSide.get() * scale;
            }
        }
        System.out.printf(Locale.ROOT, "  measured: %s%n", metric);
        return new Row(metric, unit, javaSamples, cSamples, bytes, ioctls);
    }

    private static void print(List<Row> rows) {
        System.out.println();
        System.out.printf(Locale.ROOT, "%-58s %-4s %10s %19s %10s %19s %7s %9s %9s%n", "metric", "unit", "Java",
                "Java min..max", "C", "C min..max", "Java/C", "bytes/op", "ioctls/op");
        for (Row row : rows) {
            double[] j = row.java();
            double[] c = row.c();
            System.out.printf(Locale.ROOT, "%-58s %-4s %10.3f %19s %10s %19s %7s %9.1f %9s%n", row.metric(), row.unit(),
                    row.javaMedian(), range(j), c == null ? "-" : String.format(Locale.ROOT, "%.3f", row.cMedian()),
                    c == null ? "-" : range(c),
                    c == null ? "-" : String.format(Locale.ROOT, "%.3f", row.javaMedian() / row.cMedian()),
                    row.bytesPerOp(), Double.isNaN(row.ioctlsPerOp()) ? "-"
                            : String.format(Locale.ROOT, "%.2f", row.ioctlsPerOp()));
        }
    }

    private static String range(double[] samples) {
        double[] sorted = samples.clone();
        Arrays.sort(sorted);
        return String.format(Locale.ROOT, "%.3f..%.3f", sorted[0], sorted[sorted.length - 1]);
    }

    static double median(double[] samples) {
        double[] sorted = samples.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private void write(List<Row> rows, Hypervisor.Support support) throws IOException {
        StringBuilder out = new StringBuilder("{\n  \"host\": \"" + support.reason() + "\",\n  \"cpu\": \""
                + cpuModel() + "\",\n  \"java\": \""
                + Runtime.version() + "\",\n  \"rows\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            Row row = rows.get(i);
            out.append(String.format(Locale.ROOT, "    {\"metric\": \"%s\", \"unit\": \"%s\", \"java\": %s, \"c\": %s,"
                    + " \"java_median\": %.4f, \"c_median\": %s, \"bytes_per_op\": %.2f, \"ioctls_per_op\": %s}%s%n",
                    row.metric(), row.unit(), Arrays.toString(row.java()),
                    row.c() == null ? "null" : Arrays.toString(row.c()), row.javaMedian(),
                    row.c() == null ? "null" : String.format(Locale.ROOT, "%.4f", row.cMedian()), row.bytesPerOp(),
                    Double.isNaN(row.ioctlsPerOp()) ? "null" : String.format(Locale.ROOT, "%.3f", row.ioctlsPerOp()),
                    i + 1 < rows.size() ? "," : ""));
        }
        out.append("  ]\n}\n");
        Files.createDirectories(json.toAbsolutePath().getParent());
        Files.writeString(json, out.toString());
        System.out.println("\nresults: " + json);
    }

    /** The host CPU, as /proc/cpuinfo names it. */
    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim() + " x" + Runtime.getRuntime().availableProcessors();
                }
            }
        } catch (IOException e) {
            // no cpuinfo: say so below
        }
        return "unknown CPU";
    }

    /** The C program, built with gcc on first use. */
    record NativeReference(Path binary, Path image, List<String> symbolArguments) {
        private static final String[] SYMBOLS = {"out_loop16", "mmio_loop", "count_loop", "PML4", "gdt", "gdt_end",
            "tss", "tss_end", "USER_STACK_TOP", "hello16"};

        static NativeReference prepare(byte[] image, Map<String, Long> symbols, Path source) throws Exception {
            if (source == null) {
                String home = System.getProperty("jhv.home");
                source = Path.of(home == null ? "." : home, "bench", "native", "kvmbench.c");
            }
            if (!Files.exists(source)) {
                return null;
            }
            Path directory = Files.createDirectories(Path.of("target", "bench"));
            Path binary = directory.resolve("kvmbench");
            if (!Files.exists(binary) || Files.getLastModifiedTime(binary).compareTo(Files.getLastModifiedTime(source)) < 0) {
                Process gcc;
                try {
                    gcc = new ProcessBuilder("gcc", "-O2", "-o", binary.toString(), source.toString()).inheritIO().start();
                } catch (IOException noCompiler) {
                    return null;
                }
                if (!gcc.waitFor(120, TimeUnit.SECONDS) || gcc.exitValue() != 0) {
                    return null;
                }
            }
            Path imageFile = directory.resolve("bench.bin");
            Files.write(imageFile, image);
            List<String> arguments = new ArrayList<>();
            for (String name : SYMBOLS) {
                arguments.add(name + "=0x" + Long.toHexString(symbols.get(name)));
            }
            return new NativeReference(binary, imageFile, arguments);
        }

        private Map<String, Double> execute(String test, long count) {
            List<String> command = new ArrayList<>(List.of(binary.toString(), image.toString(), test,
                    Long.toString(count)));
            command.addAll(symbolArguments);
            try {
                Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
                String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
                if (!process.waitFor(300, TimeUnit.SECONDS) || process.exitValue() != 0) {
                    throw new IllegalStateException("kvmbench " + test + " failed: " + output);
                }
                Map<String, Double> values = new HashMap<>();
                for (String line : output.split("\n")) {
                    String[] parts = line.trim().split(" ");
                    if (parts.length == 2) {
                        values.put(parts[0], Double.parseDouble(parts[1]));
                    }
                }
                return values;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        double run(String test, long count) {
            return execute(test, count).get("ns_per_op");
        }

        Map<String, Double> values(String test, long count) {
            return execute(test, count);
        }

        /** The C program booting hello16 as a new process, to its exit: ns. */
        double coldStart() {
            List<String> command = new ArrayList<>(List.of(binary.toString(), image.toString(), "hello", "1"));
            command.addAll(symbolArguments);
            return Benchmarks.coldStart(command).nanos();
        }

        /** The same dec/jnz loop run on the host, ns per iteration. */
        double hostLoop(long count) {
            return execute("compute", count).get("host_ns_per_op");
        }
    }
}
