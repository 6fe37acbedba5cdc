package dev.jhv;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Marks tests that run real guests. Without a usable /dev/kvm they are skipped with the reason;
 * with {@code -Djhv.kvm.required=true} (what CI passes when /dev/kvm exists) they fail instead,
 * so a broken KVM set-up can never pass as a run of skipped tests.
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
            if (Boolean.getBoolean("jhv.kvm.required")) {
                throw new IllegalStateException("KVM is required for this run but unusable: " + support.reason());
            }
            return ConditionEvaluationResult.disabled("KVM unavailable: " + support.reason());
        }
    }
}
