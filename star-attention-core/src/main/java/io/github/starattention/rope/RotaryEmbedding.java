package io.github.starattention.rope;

/**
 * Rotary position embedding (RoPE) in the Hugging Face "rotate half" convention, at explicit position ids.
 *
 * <p>For a head vector {@code x[0..d)} and pair {@code i < d/2}: {@code x'[i] = x[i] cos - x[i+d/2] sin},
 * {@code x'[i+d/2] = x[i+d/2] cos + x[i] sin}, with angle {@code position * invFreq[i]} computed in fp32 as
 * PyTorch does. Inverse frequencies are {@code theta^(-2i/d)}, then scaled per {@link RopeScaling}. The cos/sin
 * table grows on demand to the largest position seen ({@code maxPositions} bounds it). Thread-safe.
 */
public final class RotaryEmbedding {

    private final int headDim;
    private final int maxPositions;
    private final float[] invFreq;
    private volatile float[] cos = new float[0];
    private volatile float[] sin = new float[0];

    public RotaryEmbedding(int headDim, double theta, RopeScaling scaling, int maxPositions) {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("head dimension must be positive and even, got " + headDim);
        }
        if (!(theta > 0)) {
            throw new IllegalArgumentException("rope theta must be positive, got " + theta);
        }
        this.headDim = headDim;
        this.maxPositions = maxPositions;
        this.invFreq = inverseFrequencies(headDim, theta, scaling);
    }

    /** The scaled inverse frequencies, {@code d/2} of them. */
    public static float[] inverseFrequencies(int headDim, double theta, RopeScaling scaling) {
        int half = headDim / 2;
        float[] f = new float[half];
        for (int i = 0; i < half; i++) {
            float exponent = (float) (2 * i) / headDim;
            f[i] = (float) (1.0 / Math.pow(theta, exponent));
        }
        switch (scaling.type()) {
            case "linear" -> {
                for (int i = 0; i < half; i++) {
                    f[i] = (float) (f[i] / scaling.factor());
                }
            }
            case "llama3" -> {
                double old = scaling.originalMaxPositions();
                double lowWavelen = old / scaling.lowFreqFactor();
                double highWavelen = old / scaling.highFreqFactor();
                for (int i = 0; i < half; i++) {
                    double wavelen = 2 * Math.PI / f[i];
                    if (wavelen > lowWavelen) {
                        f[i] = (float) (f[i] / scaling.factor());
                    } else if (wavelen >= highWavelen) {
                        double smooth = (old / wavelen - scaling.lowFreqFactor())
                                / (scaling.highFreqFactor() - scaling.lowFreqFactor());
                        f[i] = (float) ((1 - smooth) * f[i] / scaling.factor() + smooth * f[i]);
                    }
                }
            }
            default -> {
            }
        }
        return f;
    }

    public int headDim() {
        return headDim;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /**
     * Rotates {@code heads} consecutive head vectors of {@code x} starting at {@code offset}, all at {@code position}.
     */
    public void apply(float[] x, int offset, int heads, int position) {
        if (position < 0 || position >= maxPositions) {
            throw new IllegalArgumentException("position " + position + " is outside the model's " + maxPositions + " positions");
        }
        ensureTable(position);
        float[] c = cos;
        float[] s = sin;
        int half = headDim / 2;
        int base = position * half;
        for (int h = 0; h < heads; h++) {
            int o = offset + h * headDim;
            for (int i = 0; i < half; i++) {
                float x1 = x[o + i];
                float x2 = x[o + i + half];
                float ci = c[base + i];
                float si = s[base + i];
                x[o + i] = x1 * ci - x2 * si;
                x[o + i + half] = x2 * ci + x1 * si;
            }
        }
    }

    /**
     * The cos and sin of positions {@code 0..positions-1}, {@code [positions][headDim/2]} each, the values {@link #apply}
     * uses (e.g. to upload them to a GPU).
     */
    public float[][] table(int positions) {
        if (positions <= 0 || positions > maxPositions) {
            throw new IllegalArgumentException(positions + " positions: the model has " + maxPositions);
        }
        ensureTable(positions - 1);
        int n = positions * (headDim / 2);
        return new float[][] {java.util.Arrays.copyOf(cos, n), java.util.Arrays.copyOf(sin, n)};
    }

    private void ensureTable(int position) {
        int half = headDim / 2;
        if ((long) (position + 1) * half <= cos.length) {
            return;
        }
        synchronized (this) {
            int have = cos.length / half;
            if (position < have) {
                return;
            }
            int n = (int) Math.min(maxPositions, Math.max(position + 1L, Math.max(4096, 2L * have)));
            float[] c = new float[n * half];
            float[] s = new float[n * half];
            System.arraycopy(cos, 0, c, 0, cos.length);
            System.arraycopy(sin, 0, s, 0, sin.length);
            for (int p = have; p < n; p++) {
                for (int i = 0; i < half; i++) {
                    float angle = (float) p * invFreq[i];
                    c[p * half + i] = (float) Math.cos(angle);
                    s[p * half + i] = (float) Math.sin(angle);
                }
            }
            sin = s;
            cos = c;
        }
    }
}
