package dev.jhv;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Marks tests that run real guests. Where {@code /dev/kvm} does not exist they are skipped, with
 * the reason. Where it exists they must run: if KVM is unusable (no permission, too old…) they fail,
 * so a broken set-up never passes as a run of skipped tests. {@code -Djhv.kvm.required=true|false}
 * overrides the choice.
 */
@Target({ElementType.TYPE, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@ExtendWith(RequiresKvm.Condition.class)
public @interface RequiresKvm {
    final class Condition implements ExecutionCondition {
        @Override
        public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
            Hypervisor.Support support = Hypervisor.support();
            if (support.available()) {
                return ConditionEvaluationResult.enabled(support.reason());
            }
            boolean required = Boolean.parseBoolean(System.getProperty("jhv.kvm.required",
                    String.valueOf(Files.exists(Path.of("/dev/kvm")))));
            if (required) {
                throw new IllegalStateException("KVM is required for this run but unusable: " + support.reason());
            }
            return ConditionEvaluationResult.disabled("KVM unavailable: " + support.reason());
        }
    }
}
