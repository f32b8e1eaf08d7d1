/**
 * Matrix products of the layers: weights in one {@link io.github.starattention.linear.WeightType} ({@link
 * io.github.starattention.linear.Matrix}, F32, BF16, 8-bit and 4-bit with block scales) times fp32 activations, behind
 * {@link io.github.starattention.linear.LinearKernel}; {@link io.github.starattention.linear.CpuLinearKernel} runs them
 * with the Vector API.
 */
package io.github.starattention.linear;
