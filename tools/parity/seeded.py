"""Seeded random weights that Java reproduces bit for bit (SeededWeights.java in star-attention-jlama's tests).

Every tensor element i of tensor NAME is drawn from splitmix64((fnv1a64(NAME) ^ seed) + i): its top 24 bits give
u = (bits - 2^23) / 2^23 in [-1, 1), an exact float32. A weight is u * scale (scale a power of two, so exact), a norm
weight 1 + u * scale (one float32 addition). Stored as bfloat16 by truncation (the float32's upper 16 bits), which
float32 holds exactly again, so both sides compute on the same numbers.
"""
import numpy as np

M64 = (1 << 64) - 1
SCALE_EMBED = 2.0 ** -3
SCALE_LINEAR = 2.0 ** -4
SCALE_BIAS = 2.0 ** -4
SCALE_NORM = 2.0 ** -3


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def uniform(name, n, seed):
    """u in [-1, 1) as float32, n elements."""
    base = np.uint64((fnv1a64(name) ^ seed) & M64)
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + base
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.int64) - (1 << 23)).astype(np.float32) * np.float32(2.0 ** -23)


def bf16_bits(x):
    return (x.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)


def tensor_specs(cfg):
    """(name, shape, kind) of a Llama/Mistral/Qwen2 checkpoint with config dict cfg."""
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", heads)
    d = cfg.get("head_dim") or h // heads
    inter = cfg["intermediate_size"]
    vocab = cfg["vocab_size"]
    bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    specs = [("model.embed_tokens.weight", (vocab, h), "embed")]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        specs += [(p + "input_layernorm.weight", (h,), "norm"),
                  (p + "self_attn.q_proj.weight", (heads * d, h), "linear"),
                  (p + "self_attn.k_proj.weight", (kv * d, h), "linear"),
                  (p + "self_attn.v_proj.weight", (kv * d, h), "linear")]
        if bias:
            specs += [(p + "self_attn.q_proj.bias", (heads * d,), "bias"),
                      (p + "self_attn.k_proj.bias", (kv * d,), "bias"),
                      (p + "self_attn.v_proj.bias", (kv * d,), "bias")]
        specs += [(p + "self_attn.o_proj.weight", (h, heads * d), "linear"),
                  (p + "post_attention_layernorm.weight", (h,), "norm"),
                  (p + "mlp.gate_proj.weight", (inter, h), "linear"),
                  (p + "mlp.up_proj.weight", (inter, h), "linear"),
                  (p + "mlp.down_proj.weight", (h, inter), "linear")]
    specs.append(("model.norm.weight", (h,), "norm"))
    if not cfg.get("tie_word_embeddings", False):
        specs.append(("lm_head.weight", (vocab, h), "embed"))
    return specs


def tensor(name, shape, kind, seed):
    n = int(np.prod(shape))
    u = uniform(name, n, seed)
    if kind == "norm":
        x = np.float32(1.0) + u * np.float32(SCALE_NORM)
    else:
        scale = {"embed": SCALE_EMBED, "linear": SCALE_LINEAR, "bias": SCALE_BIAS}[kind]
        x = u * np.float32(scale)
    return bf16_bits(x).reshape(shape)


def write_checkpoint(cfg, path, seed):
    """model.safetensors (BF16) for cfg at path."""
    import torch
    from safetensors.torch import save_file
    out = {}
    for name, shape, kind in tensor_specs(cfg):
        out[name] = torch.from_numpy(tensor(name, shape, kind, seed).view(np.int16)).view(torch.bfloat16)
    save_file(out, path, metadata={"format": "pt"})
