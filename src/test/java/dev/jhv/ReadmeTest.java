package dev.jhv;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's example is this repository's ReadmeExample, which compiles and runs here. */
class ReadmeTest {
    @Test
    void readmeShowsTheCompiledExample() throws Exception {
        String source = Files.readString(Path.of("src/test/java/dev/jhv/ReadmeExample.java"));
        String example = source.substring(source.indexOf("// README:begin\n") + 16, source.indexOf("// README:end"));
        String readme = Files.readString(Path.of("README.md"));
        assertTrue(readme.contains(example), "README.md must contain ReadmeExample.java between its markers, verbatim");
    }

    @Test
    @RequiresKvm
    void exampleRuns() {
        assertEquals("hi", ReadmeExample.hello());
    }
}
