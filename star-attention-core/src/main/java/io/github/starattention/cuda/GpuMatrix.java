package io.github.starattention.cuda;

import io.github.starattention.linear.Matrix;
import io.github.starattention.linear.WeightType;

/**
 * A weight {@link Matrix} uploaded to the GPU by {@link CudaLayers#upload(Matrix, String)}: {@code [rows][cols]}
 * row-major, fp32 or bfloat16 as on the host. Read-only; {@link #close()} frees it.
 */
public final class GpuMatrix implements AutoCloseable {

    final DeviceArray data;
    private final WeightType type;
    private final int rows;
    private final int cols;

    GpuMatrix(DeviceArray data, WeightType type, int rows, int cols) {
        this.data = data;
        this.type = type;
        this.rows = rows;
        this.cols = cols;
    }

    public WeightType type() {
        return type;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    @Override
    public void close() {
        data.close();
    }

    @Override
    public String toString() {
        return "GpuMatrix[" + rows + " x " + cols + " " + type + "]";
    }
}
