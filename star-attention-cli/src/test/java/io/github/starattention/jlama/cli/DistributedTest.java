package io.github.starattention.jlama.cli;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.starattention.attention.Device;
import io.github.starattention.jlama.EngineOptions;
import io.github.starattention.jlama.model.PassingPolicy;
import org.junit.jupiter.api.Test;

class DistributedTest {

    private static EngineOptions options(Device device, int passing) {
        return EngineOptions.builder().device(device).passing(passing, PassingPolicy.Selection.WINDOW).build();
    }

    @Test
    void passingIsRefusedOnTheCudaKernelsOnly() {
        assertThatThrownBy(() -> Distributed.refusePassingOnGpu(options(Device.CUDA, 64)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--passing needs the CPU attention kernels: add --device cpu (--device cuda runs attention "
                        + "on the GPU here)");
        assertThatCode(() -> Distributed.refusePassingOnGpu(options(Device.CPU, 64))).doesNotThrowAnyException();
        assertThatCode(() -> Distributed.refusePassingOnGpu(options(Device.CUDA, 0))).doesNotThrowAnyException();
    }
}
