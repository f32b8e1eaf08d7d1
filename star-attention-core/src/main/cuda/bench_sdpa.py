#!/usr/bin/env python3
"""PyTorch SDPA on the shapes of CudaKernelBenchmark, for a ratio in the same device run.

    python3 bench_sdpa.py [--dtype bf16|fp16] [--dims 64,128] [--prefill 4096,16384,65536]
                          [--decode 4096,16384,65536,131072] [--out sdpa.jsonl] [--compare jcuda.jsonl]

Prefill: causal, q [1, heads, N, d], k/v [1, kvHeads, N, d] (GQA through enable_gqa when this torch has it,
otherwise K/V repeated before timing). FLOPs = 4 * N * N * d * heads / 2 (as in CudaKernelBenchmark).
Decode: one query token over N keys (not causal); GB/s = bytes of the (unrepeated) K and V / time.
Every backend that accepts the shape is timed (default dispatch, flash, cuDNN, efficient); --compare prints the
ratio of the Java kernels to the default dispatch and to the best SDPA backend.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--prefill", default="4096,16384,65536")
    ap.add_argument("--decode", default="4096,16384,65536,131072")
    ap.add_argument("--out")
    ap.add_argument("--compare")
    a = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"torch not available: {e}")
        return 1
    if not torch.cuda.is_available():
        print("torch: no CUDA device")
        return 1
    dt = torch.bfloat16 if a.dtype.startswith("bf") else torch.float16
    H, KV = a.heads, a.kv_heads
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}, {torch.cuda.get_device_name()}, {dt}")
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        backends = [("default", None), ("flash", SDPBackend.FLASH_ATTENTION),
                    ("cudnn", SDPBackend.CUDNN_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    except Exception:  # older torch
        sdpa_kernel = None
        backends = [("default", None)]
    rows = []
    out = open(a.out, "w") if a.out else None

    def emit(r):
        rows.append(r)
        line = json.dumps(r)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()

    def timed(fn, budget=0.6):
        fn()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize()
        one = max(s.elapsed_time(e), 1e-3)
        iters = int(max(3, min(500, budget * 1e3 / one)))
        s.record()
        for _ in range(iters):
            fn()
        e.record(); torch.cuda.synchronize()
        return s.elapsed_time(e) / iters

    def gqa_fn(q, k, v, causal):
        fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        try:
            fn()
            return fn, "enable_gqa"
        except TypeError:
            rep = q.shape[1] // k.shape[1]
            kr, vr = k.repeat_interleave(rep, 1).contiguous(), v.repeat_interleave(rep, 1).contiguous()
            return (lambda: F.scaled_dot_product_attention(q, kr, vr, is_causal=causal)), "repeated_kv"

    def each_backend(fn):
        for name, be in backends:
            try:
                if be is None:
                    ms = timed(fn)
                else:
                    with sdpa_kernel([be]):
                        ms = timed(fn)
                yield name, ms
            except Exception as ex:  # backend refuses the shape
                yield name, f"unsupported: {str(ex).splitlines()[0][:120]}"

    dims = [int(x) for x in a.dims.split(",") if x]
    for d in dims:
        for n in [int(x) for x in a.prefill.split(",") if x]:
            q = torch.randn(1, H, n, d, device=dev, dtype=dt)
            k = torch.randn(1, KV, n, d, device=dev, dtype=dt)
            v = torch.randn(1, KV, n, d, device=dev, dtype=dt)
            fn, mode = gqa_fn(q, k, v, True)
            flops = 4.0 * n * n * d * H / 2
            for name, ms in each_backend(fn):
                r = {"bench": "prefill", "impl": "sdpa", "backend": name, "gqa": mode, "dtype": a.dtype, "d": d,
                     "heads": H, "kvHeads": KV, "seq": n}
                if isinstance(ms, str):
                    r["error"] = ms
                else:
                    r.update(ms=round(ms, 4), tflops=round(flops / (ms * 1e-3) / 1e12, 2))
                emit(r)
            del q, k, v, fn
            torch.cuda.empty_cache()
        for n in [int(x) for x in a.decode.split(",") if x]:
            q = torch.randn(1, H, 1, d, device=dev, dtype=dt)
            k = torch.randn(1, KV, n, d, device=dev, dtype=dt)
            v = torch.randn(1, KV, n, d, device=dev, dtype=dt)
            fn, mode = gqa_fn(q, k, v, False)
            nbytes = 2.0 * n * KV * d * q.element_size()
            for name, ms in each_backend(fn):
                r = {"bench": "decode", "impl": "sdpa", "backend": name, "gqa": mode, "dtype": a.dtype, "d": d,
                     "heads": H, "kvHeads": KV, "seq": n}
                if isinstance(ms, str):
                    r["error"] = ms
                else:
                    r.update(ms=round(ms, 5), gbps=round(nbytes / (ms * 1e-3) / 1e9, 1))
                emit(r)
            del q, k, v, fn
            torch.cuda.empty_cache()
    if out:
        out.close()
    if a.compare:
        compare(a.compare, rows)
    return 0


def compare(path, sdpa_rows):
    mine = [json.loads(l) for l in open(path) if l.strip()]
    print("\n=== Java CUDA kernels vs PyTorch SDPA (same device run) ===")
    for bench, metric in (("prefill", "tflops"), ("decode", "gbps")):
        keys = sorted({(r["d"], r["seq"]) for r in mine if r["bench"] == bench})
        for d, n in keys:
            ours = [r for r in mine if r["bench"] == bench and r["d"] == d and r["seq"] == n]
            best = max(ours, key=lambda r: r[metric])
            theirs = [r for r in sdpa_rows if r["bench"] == bench and r["d"] == d and r["seq"] == n and metric in r]
            dflt = next((r for r in theirs if r["backend"] == "default"), None)
            top = max(theirs, key=lambda r: r[metric]) if theirs else None
            line = f"{bench:7s} d={d:<3d} N={n:<6d} jcuda {best[metric]:8.1f} ({best['variant']})"
            if dflt:
                line += f" | sdpa default {dflt[metric]:8.1f} -> {best[metric] / dflt[metric]:5.2f}x"
            if top:
                line += f" | best sdpa ({top['backend']}) {top[metric]:8.1f} -> {best[metric] / top[metric]:5.2f}x"
            if bench == "decode" and best.get("peakGbps"):
                line += f" | {100 * best[metric] / best['peakGbps']:.0f}% of {best['peakGbps']:.0f} GB/s peak"
            print(line)


if __name__ == "__main__":
    sys.exit(main())
