package io.github.starattention.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.attention.AttentionKernel;
import io.github.starattention.attention.AttentionKernels;
import io.github.starattention.attention.CpuAttentionKernel;
import io.github.starattention.attention.Device;
import org.junit.jupiter.api.Test;

/** Runs everywhere: {@code Device.AUTO} picks CUDA only where the probe passes, the CPU kernel otherwise. */
class CudaFallbackTest {

    @Test
    void autoPicksTheKernelTheProbeAllows() {
        CudaProbe.Result probe = CudaProbe.probe();
        assertThat(probe.detail()).isNotBlank();
        assertThat(CudaProbe.probe()).isSameAs(probe); // probed once
        try (AttentionKernel k = AttentionKernels.open(Device.AUTO, 1)) {
            if (probe.available()) {
                assertThat(k).isInstanceOf(CudaAttentionKernel.class);
                assertThat(k.name()).isEqualTo("cuda:0");
            } else {
                assertThat(k).isInstanceOf(CpuAttentionKernel.class);
                assertThat(k.name()).isEqualTo("cpu");
            }
        }
    }

    @Test
    void cudaWithoutGpuIsAClearError() {
        if (CudaProbe.isAvailable()) {
            try (AttentionKernel k = AttentionKernels.open(Device.CUDA, 1)) {
                assertThat(k.name()).startsWith("cuda:");
            }
        } else {
            assertThatThrownBy(() -> AttentionKernels.open(Device.CUDA, 1))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("CUDA is not usable")
                    .hasMessageContaining("Device.AUTO");
            assertThatThrownBy(CudaAttentionKernel::new).isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void cpuIsAlwaysCpu() {
        try (AttentionKernel k = AttentionKernels.open(Device.CPU, 1)) {
            assertThat(k).isInstanceOf(CpuAttentionKernel.class);
        }
    }
}
