package io.github.starattention.jlama.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.Device;
import org.junit.jupiter.api.Test;

/** Everything that changes results is in the fingerprint: hosts that differ in it are not used together. */
class ModelFingerprintTest {

    @Test
    void coversTheWeightFormatAndTheKernelNumerics() {
        var model = ClusterFixture.model();
        String cpu;
        try (AttentionKernel kernel = AttentionKernels.open(Device.CPU, 1)) {
            cpu = ModelFingerprint.of(model, "F32", kernel.numerics());
        }
        assertThat(cpu).endsWith(":F32:cpu-fp32").isEqualTo(ModelFingerprint.of(model, "F32", "cpu-fp32"));
        assertThat(ModelFingerprint.of(model, "F32", "cuda-fp16")).isNotEqualTo(cpu);
        assertThat(ModelFingerprint.of(model, "F32", "cuda-bf16")).isNotEqualTo(ModelFingerprint.of(model, "F32",
                "cuda-fp16"));
        assertThat(ModelFingerprint.of(model, "AS_STORED", "cpu-fp32")).isNotEqualTo(cpu);
    }
}
