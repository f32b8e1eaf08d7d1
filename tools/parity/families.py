"""The five model families of the parity suite: real config.json, tokenizer and chat template of each.

  python3 families.py SOURCES OUT

SOURCES holds public files fetched from GitHub (see README.md beside this script for where each comes from):
  smollm2/            HuggingFaceTB/SmolLM2-135M-Instruct's config.json, tokenizer.json, tokenizer_config.json
  mistral-v0.3/       mistralai/Mistral-7B-Instruct-v0.3's config.json, tokenizer.json, tokenizer_config.json
  llama3.tiktoken     Meta's Llama 3 tokenizer.model (tiktoken ranks; Llama 3.1 and 3.2 use the same one)
  qwen.tiktoken       Qwen's BPE ranks (151,643 tokens: the vocabulary Qwen2 and Qwen2.5 were built from)
  llama2.model        Meta's Llama 2 SentencePiece model (TinyLlama uses it unchanged)
Where the original tokenizer.json is over the 4 MiB a fetched snapshot holds (Llama 3.2, Qwen2.5) or not on GitHub
(TinyLlama), it is rebuilt with transformers' own converters from those sources, with the family's pre-tokenizer
pattern, special tokens and post-processor. Needs transformers (5.x), tokenizers, tiktoken, sentencepiece, protobuf.
"""
import json
import os
import shutil
import sys

from tokenizers import normalizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA32_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072,
    "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
    "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 128256}

QWEN25_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
    "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "use_cache": True, "use_sliding_window": False, "vocab_size": 151936}

TINYLLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632,
    "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22,
    "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
    "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 32000}

LLAMA32_TEMPLATE = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "llama3.2.jinja")).read()
QWEN25_TEMPLATE = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "qwen2.5.jinja")).read()
TINYLLAMA_TEMPLATE = ("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
                      "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + "
                      "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
                      "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
                      "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")


def llama3_specials():
    named = {0: "<|begin_of_text|>", 1: "<|end_of_text|>", 2: "<|reserved_special_token_0|>",
             3: "<|reserved_special_token_1|>", 4: "<|finetune_right_pad_id|>", 5: "<|step_id|>",
             6: "<|start_header_id|>", 7: "<|end_header_id|>", 8: "<|eom_id|>", 9: "<|eot_id|>",
             10: "<|python_tag|>"}
    return [named.get(i, f"<|reserved_special_token_{i - 8}|>") for i in range(256)]


def qwen_specials():
    return ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
            "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
            "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]


def tiktoken_tokenizer(ranks_file, pattern, specials):
    import inspect
    params = inspect.signature(TikTokenConverter.__init__).parameters
    key = "extra_special_tokens" if "extra_special_tokens" in params else "additional_special_tokens"
    return TikTokenConverter(vocab_file=ranks_file, pattern=pattern, **{key: specials}).converted()


def save(tok, out, config, tokenizer_config):
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    json.dump(tokenizer_config, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2, ensure_ascii=False)


def build(src, out):
    for step in (copy_originals, build_llama32, build_qwen25, build_tinyllama):
        try:
            step(src, out)
        except Exception:
            import traceback
            traceback.print_exc()


def copy_originals(src, out):
    for name in ("smollm2", "mistral-v0.3"):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(src, name, f), os.path.join(out, name, f))



def build_llama32(src, out):
    tok = tiktoken_tokenizer(os.path.join(src, "llama3.tiktoken"), LLAMA3_PATTERN, llama3_specials())
    tok.model.ignore_merges = True
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", 128000)])])
    save(tok, os.path.join(out, "llama3.2"), LLAMA32_CONFIG, {
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA32_TEMPLATE,
        "clean_up_tokenization_spaces": True, "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"})



def build_qwen25(src, out):
    specials = qwen_specials()
    tok = tiktoken_tokenizer(os.path.join(src, "qwen.tiktoken"), QWEN2_PATTERN, specials)
    tok.normalizer = normalizers.NFC()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    save(tok, os.path.join(out, "qwen2.5"), QWEN25_CONFIG, {
        "add_prefix_space": False, "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "additional_special_tokens": specials[1:14], "chat_template": QWEN25_TEMPLATE,
        "clean_up_tokenization_spaces": False, "errors": "replace", "model_max_length": 131072,
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None})



def build_tinyllama(src, out):
    tmp = os.path.join(out, ".llama2-src")
    os.makedirs(tmp, exist_ok=True)
    shutil.copy(os.path.join(src, "llama2.model"), os.path.join(tmp, "tokenizer.model"))
    tcfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
            "unk_token": "<unk>", "pad_token": "</s>", "legacy": False, "clean_up_tokenization_spaces": False,
            "model_max_length": 2048, "padding_side": "right", "tokenizer_class": "LlamaTokenizer"}
    json.dump(tcfg, open(os.path.join(tmp, "tokenizer_config.json"), "w"))
    fast = AutoTokenizer.from_pretrained(tmp, from_slow=True)
    save(fast.backend_tokenizer if hasattr(fast, "backend_tokenizer") else fast._tokenizer,
         os.path.join(out, "tinyllama"), TINYLLAMA_CONFIG, dict(tcfg, chat_template=TINYLLAMA_TEMPLATE))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    build(sys.argv[1], sys.argv[2])
