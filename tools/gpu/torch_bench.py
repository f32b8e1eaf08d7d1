"""PyTorch baseline of the GPU benchmark: prefill and decode speed of a Hugging Face checkpoint at long contexts.

  python3 tools/gpu/torch_bench.py --model DIR --lengths 8192,32768,131072 [--decode-tokens 32] [--runs 2]
                                   [--seed 0] --out FILE.jsonl

For each length L (random token ids, seeded): prefill = best of --runs forwards at L (LM head on the last token only);
decode = greedy generate with a static cache, tokens/s = (D - 1) / (t(D tokens) - t(1 token)), best of --runs each
(the first static-cache run may include torch.compile time); peak GPU memory over the length's runs.
One JSON object per length goes to --out and to stdout (flushed per line); progress goes to stderr.
Needs torch with CUDA and transformers (5.x); the model is run in bfloat16 with SDPA attention.
"""
import argparse
import gc
import json
import os
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

GIB = 2 ** 30


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def is_oom(exc):
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom_type is not None and isinstance(exc, oom_type)) or "out of memory" in str(exc).lower()


def free(model=None):
    if model is not None and getattr(model, "_cache", None) is not None:  # a cache generate() may keep for reuse
        model._cache = None
    gc.collect()
    torch.cuda.empty_cache()


def load(model_dir):
    base = {"attn_implementation": "sdpa"}
    attempts = [{"dtype": torch.bfloat16, "device_map": "cuda"}, {"torch_dtype": torch.bfloat16, "device_map": "cuda"},
                {"dtype": torch.bfloat16}, {"torch_dtype": torch.bfloat16}]
    last = None
    for extra in attempts:
        try:
            model = AutoModelForCausalLM.from_pretrained(model_dir, **base, **extra)
            break
        except (TypeError, ImportError, ValueError) as e:  # dtype= unknown, or device_map needs accelerate
            log(f"from_pretrained({', '.join(extra)}) failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            last = e
    else:
        raise last
    model = model.to(device="cuda", dtype=torch.bfloat16)
    model.eval()
    return model


class Prefill:
    """model(ids, use_cache=True, <logits kwarg>=1): the LM head on the last token only."""

    def __init__(self, model):
        self.model = model
        self.kw = "logits_to_keep"

    def __call__(self, ids):
        try:
            return self.model(ids, use_cache=True, **{self.kw: 1})
        except TypeError:
            if self.kw != "logits_to_keep":
                raise
            self.kw = "num_logits_to_keep"
            log("logits_to_keep not accepted; using num_logits_to_keep")
            return self.model(ids, use_cache=True, **{self.kw: 1})


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, result


COMPILE = False  # --compile: let generate() torch.compile the static-cache decode step (minutes per shape)


def generate(model, ids, tokens, cache):
    kwargs = dict(attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                  do_sample=False, pad_token_id=0)
    if cache == "static":
        kwargs["cache_implementation"] = "static"
        if not COMPILE:
            kwargs["disable_compile"] = True
    seconds, out = timed(lambda: model.generate(ids, **kwargs))
    made = out.shape[1] - ids.shape[1]
    del out
    free()
    if made != tokens:
        log(f"  generate made {made} tokens, not {tokens}")
    return seconds


def decode_rate(model, ids, d, runs, cache):
    """Best t(1) and best t(D) over runs; returns tokens/s of the D - 1 decode steps."""
    best1 = bestd = None
    for r in range(runs):
        log(f"  decode ({cache} cache) run {r + 1}/{runs}: 1 token")
        t1 = generate(model, ids, 1, cache)
        log(f"  decode ({cache} cache) run {r + 1}/{runs}: {d} tokens")
        td = generate(model, ids, d, cache)
        log(f"    t(1) {t1 * 1000:.1f} ms, t({d}) {td * 1000:.1f} ms")
        best1 = t1 if best1 is None else min(best1, t1)
        bestd = td if bestd is None else min(bestd, td)
    return (d - 1) / (bestd - best1) if bestd > best1 else None


def bench_length(model, prefill, length, args, vocab, meta):
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    ids = torch.randint(1000, vocab - 1000, (1, length), generator=gen, dtype=torch.long).to("cuda")
    free()
    torch.cuda.reset_peak_memory_stats()

    best = None
    for r in range(args.runs):
        log(f"L={length}: prefill run {r + 1}/{args.runs}")
        seconds, out = timed(lambda: prefill(ids))
        del out
        free()
        log(f"  {seconds * 1000:.1f} ms")
        best = seconds if best is None else min(best, seconds)

    cache = "static"
    failure = None
    try:
        rate = decode_rate(model, ids, args.decode_tokens, args.runs, cache)
    except Exception as e:  # noqa: BLE001 - any failure of the static path falls back to the dynamic cache
        failure = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
    if failure is not None:
        free(model)
        print(f"L={length}: static-cache generate failed, using the dynamic cache: {failure}", file=sys.stderr,
              flush=True)
        cache = "dynamic"
        rate = decode_rate(model, ids, args.decode_tokens, args.runs, cache)

    peak = torch.cuda.max_memory_allocated()
    del ids
    free(model)
    kv_bytes = 2 * meta["_layers"] * meta["_kv_heads"] * meta["_head_dim"] * length * 2
    record = {k: meta[k] for k in ("impl", "torch", "transformers", "gpu", "model")}
    record.update(length=length, prefill_ms=round(best * 1000, 3), prefill_tokens_per_s=round(length / best, 1),
                  decode_tokens_per_s=None if rate is None else round(rate, 2), decode_tokens=args.decode_tokens,
                  cache=cache, compiled=COMPILE, peak_gib=round(peak / GIB, 3), weights_gib=meta["weights_gib"],
                  kv_gib=round(kv_bytes / GIB, 3))
    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lengths", required=True, help="comma-separated context lengths, e.g. 8192,32768,131072")
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--compile", action="store_true",
                    help="let generate() compile the static-cache step with torch.compile (off: eager decode)")
    args = ap.parse_args()
    global COMPILE
    COMPILE = args.compile
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    if args.decode_tokens < 2:
        ap.error("--decode-tokens must be at least 2")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not torch.cuda.is_available():
        sys.exit("torch_bench: CUDA is not available")

    log(f"loading {args.model}")
    model = load(args.model)
    cfg = model.config
    vocab = cfg.vocab_size
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    max_pos = getattr(cfg, "max_position_embeddings", None)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    meta = {"impl": "torch", "torch": torch.__version__, "transformers": transformers.__version__,
            "gpu": torch.cuda.get_device_name(0), "model": os.path.basename(os.path.normpath(args.model)),
            "weights_gib": round(weight_bytes / GIB, 3),
            "_layers": cfg.num_hidden_layers, "_kv_heads": kv_heads, "_head_dim": head_dim}
    log(f"{meta['model']}: {cfg.num_hidden_layers} layers, {meta['weights_gib']} GiB of weights on {meta['gpu']}")

    runnable = []
    for length in lengths:
        if max_pos is not None and length > max_pos:
            log(f"L={length}: skipped, over max_position_embeddings {max_pos}")
        elif length < 1:
            log(f"L={length}: skipped, not a length")
        else:
            runnable.append(length)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with torch.inference_mode(), open(args.out, "w") as sink:
        prefill = Prefill(model)
        if runnable:
            warm = min(runnable[0], 2048)
            log(f"warm-up forward at {warm} tokens")
            gen = torch.Generator(device="cpu").manual_seed(args.seed)
            ids = torch.randint(1000, vocab - 1000, (1, warm), generator=gen, dtype=torch.long).to("cuda")
            out = prefill(ids)
            torch.cuda.synchronize()
            del out, ids
            free()

        for length in runnable:
            oom = False
            try:
                record = bench_length(model, prefill, length, args, vocab, meta)
            except Exception as e:  # noqa: BLE001
                if not is_oom(e):
                    raise
                oom = True
            if oom:
                free(model)
                log(f"L={length}: out of memory")
                record = {"impl": "torch", "length": length, "error": "out of memory"}
            line = json.dumps(record)
            sink.write(line + "\n")
            sink.flush()
            print(line, flush=True)


if __name__ == "__main__":
    main()
