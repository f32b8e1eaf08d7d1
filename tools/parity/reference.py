"""References of the parity suite, made with Hugging Face transformers in fp32 on CPU.

  python3 reference.py FAMILIES_DIR

For every family folder (families.py writes them) it writes reference.json beside the tokenizer:
  - tokenizer: ids and decoded text of every corpus string (no special tokens added), and the time transformers takes
    to tokenize about 4K, 16K and 64K tokens;
  - prompt: the chat prompt (a system turn with CONTEXT, a user turn with QUESTION) rendered with the family's chat
    template, its ids (one BOS: the tokenizer's own, unless the template writes it), apply_chat_template's ids, and
    where the context ends (see split());
  - for a checkpoint of the family's real dimensions with `layers` layers and seeded weights (seeded.py): the logits
    after the prompt at chosen indices and 32 greedy tokens, for global attention and for Star Attention with 1 and 4
    blocks (block = anchor = ceil(context / blocks)), Star Attention computed here independently of the Java code.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

import seeded

SEED = 20261203
LAYERS = {"smollm2": 2, "llama3.2": 1, "qwen2.5": 2, "mistral-v0.3": 1, "tinyllama": 2}
NEW_TOKENS = 32
DATE = "26 Jul 2024"  # Llama 3.2's template falls back to this when no strftime_now is given
ALT_QUESTION = "\ue000"

CORPUS = [
    "Hello world",
    "\n\n",
    "a  b   c    d\t\te\n \n  \n",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }  // dot product",
    "Ünïcödé — “quotes” 日本語 🙂",
    "Price: 1234567.89 € or 12,345 $; call +1-800-555-0199.",
    "中文分词测试：今天天气很好，我们去公园散步吧。",
    "こんにちは、世界！カタカナとひらがな。",
    "한국어 문장도 토큰화합니다.",
    "Emoji: 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 🙂🙃",
    "Accents: café, naïve, façade, Ærøskøbing, São Paulo, Kraków, İstanbul.",
    "   leading and trailing spaces   ",
    "<|im_start|>user\nnot a turn<|im_end|>",
    "Mixed\r\nline\rendings\n",
    "URL: https://example.com/path?q=star+attention&x=1#frag",
    "x" * 200,
    "The quick brown fox jumps over the lazy dog. " * 3,
]

CONTEXT = (
    "Star Attention splits a long context into blocks. Every block after the first is encoded with the anchor, "
    "the first block's tokens, in front of it; only the block's own keys and values are kept.\n\n"
    "Notes from the lab (2024-11-26):\n"
    "  - block size 4096, anchor 4096, 8 hosts\n"
    "  - prefill 11.2x faster at 128K; accuracy 95%+ of global\n\n"
    "def merge(outputs, lse):\n"
    "    m = max(lse)\n"
    "    w = [math.exp(x - m) for x in lse]\n"
    "    return sum(wi * oi for wi, oi in zip(w, outputs)) / sum(w)\n\n"
    "Café owners in Zürich said: «Ça va très bien» — 日本語のテキストも含まれます 🙂. "
    "The secret number is 48213. Remember it; the question will ask for it.\n"
    "Tabs\tand   runs of spaces    stay as they are.")
QUESTION = "What is the secret number mentioned in the notes?"


def render(tok, messages):
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, date_string=DATE)


def split(tok, messages):
    """The rendered prompt and where its context ends (StarAttentionModel.split's rule): where the earlier turns end
    when the template renders them as a prefix of the whole prompt; otherwise (Mistral moves the system prompt into
    the last [INST]) the longest prefix that does not depend on the question. Trailing whitespace goes to the query."""
    full = render(tok, messages)
    if len(messages) > 1:
        try:
            prefix = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=False,
                                             date_string=DATE)
            if full.startswith(prefix) and messages[-2]["content"].strip() in prefix:
                return full, len(prefix.rstrip())
        except Exception:
            pass
    alt = render(tok, messages[:-1] + [{"role": "user", "content": ALT_QUESTION}])
    b = 0
    while b < min(len(full), len(alt)) and full[b] == alt[b]:
        b += 1
    return full, len(full[:b].rstrip())


def prompt_ids(tok, full, boundary):
    bos = tok.bos_token
    add = not (bos and full.startswith(bos))
    enc = tok(full, add_special_tokens=add, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    k = 0
    while k < len(ids) and enc["offset_mapping"][k][1] <= boundary:
        k += 1
    return ids, k, add


def template_ids(tok, messages):
    out = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, date_string=DATE)
    if hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)


def tokenizer_speed(tok):
    piece = " ".join(CORPUS) + " " + CONTEXT + "\n"
    per = len(tok(piece, add_special_tokens=False)["input_ids"])
    result = {}
    for target in (4096, 16384, 65536):
        text = piece * math.ceil(target / per)
        t0 = time.perf_counter()
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        result[str(target)] = {"tokens": n, "chars": len(text), "ms": round((time.perf_counter() - t0) * 1000, 2)}
    return result


def layer_kv(cache, l):
    if hasattr(cache, "layers"):
        return cache.layers[l].keys, cache.layers[l].values
    return cache.key_cache[l], cache.value_cache[l]


@torch.no_grad()
def star_cache(model, ctx, blocks):
    """Phase 1 of Star Attention: block j > 0 is encoded behind the anchor (the first block's tokens at positions
    0..a-1), its own tokens at their global positions; the anchor's KV is dropped."""
    n = len(ctx)
    b = math.ceil(n / blocks)
    a = b
    layers = model.config.num_hidden_layers
    keys, values = [[] for _ in range(layers)], [[] for _ in range(layers)]
    for j in range(math.ceil(n / b)):
        blk = ctx[j * b:(j + 1) * b]
        ids = blk if j == 0 else ctx[:a] + blk
        pos = list(range(len(blk))) if j == 0 else list(range(a)) + list(range(j * b, j * b + len(blk)))
        c = DynamicCache()
        model(input_ids=torch.tensor([ids]), position_ids=torch.tensor([pos]), past_key_values=c, use_cache=True)
        for l in range(layers):
            k, v = layer_kv(c, l)
            keys[l].append(k[:, :, -len(blk):, :])
            values[l].append(v[:, :, -len(blk):, :])
    cache = DynamicCache()
    for l in range(layers):
        cache.update(torch.cat(keys[l], dim=2), torch.cat(values[l], dim=2), l)
    return cache, b


@torch.no_grad()
def step(model, cache, tokens, start):
    pos = torch.arange(start, start + len(tokens))
    out = model(input_ids=torch.tensor([tokens]), position_ids=pos[None], cache_position=pos, past_key_values=cache,
                use_cache=True)
    return out.logits[0, -1].double()


@torch.no_grad()
def greedy(model, cache, first_logits, start):
    logits, out = first_logits, []
    for i in range(NEW_TOKENS):
        t = int(torch.argmax(logits))
        out.append(t)
        if i + 1 < NEW_TOKENS:
            logits = step(model, cache, [t], start + i)
    return out


@torch.no_grad()
def model_reference(family_dir, cfg, ids, k):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        small = dict(cfg, num_hidden_layers=LAYERS[os.path.basename(family_dir)])
        json.dump(small, open(os.path.join(tmp, "config.json"), "w"))
        seeded.write_checkpoint(small, os.path.join(tmp, "model.safetensors"), SEED)
        model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ctx, query = ids[:k], ids[k:]
    whole = model(input_ids=torch.tensor([ids])).logits[0, -1].double()
    model.generation_config.eos_token_id = None  # 32 tokens whatever they are; our test stops where we stop
    generated = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                               pad_token_id=0)[0, len(ids):].tolist()
    top = torch.topk(whole, 16).indices.tolist()
    rng = np.random.default_rng(SEED)
    chosen = sorted(set(top) | set(rng.choice(cfg["vocab_size"], 112, replace=False).tolist()))
    runs = {}
    for name, blocks in (("global", None), ("star1", 1), ("star4", 4)):
        if blocks is None:
            cache = DynamicCache()
            step(model, cache, ctx, 0)
            block = len(ctx)
        else:
            cache, block = star_cache(model, ctx, blocks)
        first = step(model, cache, query, len(ctx))
        runs[name] = {"block": block, "logits": [float(first[i]) for i in chosen],
                      "greedy": greedy(model, cache, first, len(ids))}
    assert runs["global"]["greedy"] == generated, ("own greedy loop differs from generate()", generated)
    err = max(abs(a - b) for a, b in zip(runs["global"]["logits"], [float(whole[i]) for i in chosen]))
    return {"layers": small["num_hidden_layers"], "seed": SEED, "logit_indices": chosen,
            "whole_prompt_logits": [float(whole[i]) for i in chosen], "cached_vs_whole_max_error": err, **runs}


def main(root):
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.set_float32_matmul_precision("highest")
    for family in sorted(LAYERS):
        d = os.path.join(root, family)
        if not os.path.isdir(d):
            print(f"{family}: no folder, skipped", flush=True)
            continue
        try:
            one(d, family)
        except Exception:
            import traceback
            traceback.print_exc()


def one(d, family):
    tok = AutoTokenizer.from_pretrained(d)
    cfg = json.load(open(os.path.join(d, "config.json")))
    corpus = []
    for s in CORPUS:
        ids = tok(s, add_special_tokens=False)["input_ids"]
        corpus.append({"text": s, "ids": list(ids),
                       "decoded": tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)})
    messages = [{"role": "system", "content": CONTEXT}, {"role": "user", "content": QUESTION}]
    full, boundary = split(tok, messages)
    ids, k, added = prompt_ids(tok, full, boundary)
    t0 = time.time()
    ref = {"family": family, "transformers": __import__("transformers").__version__,
           "corpus": corpus, "tokenize_ms": tokenizer_speed(tok),
           "prompt": {"system": CONTEXT, "user": QUESTION, "date_string": DATE, "rendered": full,
                      "context_chars": boundary, "ids": ids, "context_tokens": k, "bos_added": added,
                      "apply_chat_template_ids": template_ids(tok, messages)},
           "model": model_reference(d, cfg, ids, k)}
    json.dump(ref, open(os.path.join(d, "reference.json"), "w"), ensure_ascii=False, indent=1)
    print(f"{family}: {len(ids)} prompt ids ({k} context), global greedy {ref['model']['global']['greedy'][:8]}, "
          f"star4 {ref['model']['star4']['greedy'][:8]}, cached-vs-whole {ref['model']['cached_vs_whole_max_error']:.2e}, "
          f"{time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
