"""Make a random-weight Hugging Face checkpoint folder of a real architecture, for the GPU benchmark.

  python3 tools/gpu/make_checkpoint.py --family llama3.2-1b|llama3.1-8b --out DIR [--seed 0] [--layers N]

DIR gets config.json (the family's published configuration, num_hidden_layers overridden by --layers),
the Llama 3 tokenizer (tokenizer.json, tokenizer_config.json, from the repository's test resources),
one model.safetensors in bfloat16 (seeded normal(0, 0.02) weights, norms at one, made on the GPU),
and checkpoint.json, a marker of family/seed/layers: a folder already made with the same ones is kept as it is.
Needs torch with CUDA and transformers (5.x).
"""
import argparse
import gzip
import inspect
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = REPO / "star-attention-jlama" / "src" / "test" / "resources" / "families" / "llama3.2"

# Llama-3.2-1B-Instruct's real config.json (the parity suite's copy), and Meta-Llama-3.1-8B-Instruct's, which
# differs from it in these keys only.
LLAMA32_CONFIG = json.loads((TOKENIZER_DIR / "config.json").read_text())
LLAMA31_8B_CONFIG = dict(LLAMA32_CONFIG, head_dim=128, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         rope_scaling=dict(LLAMA32_CONFIG["rope_scaling"], factor=8.0), tie_word_embeddings=False)

FAMILIES = {"llama3.2-1b": LLAMA32_CONFIG, "llama3.1-8b": LLAMA31_8B_CONFIG}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def write_tokenizer(out):
    with gzip.open(TOKENIZER_DIR / "tokenizer.json.gz", "rb") as src, open(out / "tokenizer.json", "wb") as dst:
        shutil.copyfileobj(src, dst)
    shutil.copyfile(TOKENIZER_DIR / "tokenizer_config.json", out / "tokenizer_config.json")


def reinit(model, seed, std):
    """Seeded normal(0, std) for every Linear and Embedding weight, ones for every RMSNorm weight, zero biases."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.normal_(mean=0.0, std=std)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
            elif type(module).__name__.endswith("RMSNorm") and getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=sorted(FAMILIES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=None, help="override num_hidden_layers (quick tests)")
    args = ap.parse_args()

    cfg = dict(FAMILIES[args.family])
    if args.layers is not None:
        if args.layers < 1:
            ap.error("--layers must be at least 1")
        cfg["num_hidden_layers"] = args.layers
    out = Path(args.out).resolve()
    marker = {"family": args.family, "seed": args.seed, "layers": cfg["num_hidden_layers"]}

    marker_file = out / "checkpoint.json"
    if (out / "model.safetensors").is_file() and (out / "config.json").is_file() and marker_file.is_file():
        try:
            existing = json.loads(marker_file.read_text())
        except ValueError:
            existing = None
        if existing == marker:
            print(f"{out}: already made ({args.family}, seed {args.seed}, {cfg['num_hidden_layers']} layers)",
                  flush=True)
            return

    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    if not torch.cuda.is_available():
        sys.exit("make_checkpoint: CUDA is not available")

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    # Stale files of an earlier, different checkpoint must not survive next to the new one.
    for stale in [marker_file, out / "model.safetensors.index.json", *out.glob("model*.safetensors")]:
        if stale.exists():
            stale.unlink()

    config = LlamaConfig(**cfg)
    torch.manual_seed(args.seed)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    if any(p.dtype != torch.bfloat16 for p in model.parameters()):
        model = model.to(torch.bfloat16)
    # transformers may skip its own init on some paths: initialise every weight explicitly, seeded.
    reinit(model, args.seed, cfg["initializer_range"])
    if any(p.device.type != "cuda" for p in model.parameters()):
        sys.exit("make_checkpoint: some parameters are not on the GPU")
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    torch.cuda.synchronize()
    made = time.perf_counter() - start

    save_kwargs = {"max_shard_size": "200GB"}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        save_kwargs["safe_serialization"] = True  # transformers 4.x; 5.x only writes safetensors
    model.save_pretrained(str(out), **save_kwargs)
    del model
    torch.cuda.empty_cache()

    if (out / "model.safetensors.index.json").exists():
        sys.exit(f"make_checkpoint: {out} got a sharded checkpoint (model.safetensors.index.json); "
                 "the Java loader wants one model.safetensors")
    if not (out / "model.safetensors").is_file():
        sys.exit(f"make_checkpoint: {out}/model.safetensors was not written")

    # The published config.json, literally (save_pretrained may write a newer layout, e.g. rope_parameters).
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    write_tokenizer(out)
    marker_file.write_text(json.dumps(marker) + "\n")

    size_gib = (out / "model.safetensors").stat().st_size / 2 ** 30
    print(f"{out}: {args.family}, seed {args.seed}, {cfg['num_hidden_layers']} layers, {params:,} parameters, "
          f"{size_gib:.2f} GiB, made in {made:.1f} s, {time.perf_counter() - start:.1f} s in all "
          f"(torch {torch.__version__}, transformers {transformers.__version__})", flush=True)


if __name__ == "__main__":
    main()
