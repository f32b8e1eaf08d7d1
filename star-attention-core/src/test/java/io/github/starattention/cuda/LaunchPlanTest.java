package io.github.starattention.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import org.junit.jupiter.api.Test;

/** How a {@link LaunchPlan} tells a changed launch from the one its graph holds (no GPU needed). */
class LaunchPlanTest {

    private static final CUdeviceptr BASE = new CUdeviceptr();

    @Test
    void devicePointersCompareByAddressWithTheirOffset() {
        CUdeviceptr a = BASE.withByteOffset(256);
        CUdeviceptr b = BASE.withByteOffset(512);
        assertThat(a).as("JCuda's equals, which the plan must not use").isEqualTo(b);
        assertThat(LaunchPlan.sameValue(a, b)).isFalse();
        assertThat(LaunchPlan.sameValue(a, BASE.withByteOffset(128).withByteOffset(128))).isTrue();
        assertThat(LaunchPlan.address(b) - LaunchPlan.address(a)).isEqualTo(256);
    }

    @Test
    void aLaunchIsTheSameOnlyWithTheSameKernelGridAndArgumentValues() {
        LaunchPlan.Launch step = launch("k", 8, 0, BASE.withByteOffset(64), 7, 3L, 0.5f);
        assertThat(step.sameAs(launch("k", 8, 0, BASE.withByteOffset(64), 7, 3L, 0.5f))).isTrue();
        assertThat(step.sameAs(launch("k", 8, 0, BASE.withByteOffset(64), 8, 3L, 0.5f))).as("an int").isFalse();
        assertThat(step.sameAs(launch("k", 8, 0, BASE.withByteOffset(64), 7, 4L, 0.5f))).as("a long").isFalse();
        assertThat(step.sameAs(launch("k", 8, 0, BASE.withByteOffset(64), 7, 3L, 0.25f))).as("a float").isFalse();
        assertThat(step.sameAs(launch("k", 8, 0, BASE.withByteOffset(96), 7, 3L, 0.5f))).as("an address").isFalse();
        assertThat(step.sameAs(launch("k", 9, 0, BASE.withByteOffset(64), 7, 3L, 0.5f))).as("the grid").isFalse();
        assertThat(step.sameAs(launch("k", 8, 1024, BASE.withByteOffset(64), 7, 3L, 0.5f))).as("shared memory")
                .isFalse();
        assertThat(step.sameAs(launch("j", 8, 0, BASE.withByteOffset(64), 7, 3L, 0.5f))).as("the kernel").isFalse();
        assertThat(step.sameAs(launch("k", 8, 0, BASE.withByteOffset(64), 7L, 3L, 0.5f))).as("an int as a long")
                .isFalse();
    }

    private static LaunchPlan.Launch launch(String name, int grid, int smem, Object... args) {
        return new LaunchPlan.Launch(name, new CUfunction(), grid, 1, 1, 128, smem, args, () -> name);
    }
}
