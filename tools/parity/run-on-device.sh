#!/usr/bin/env bash
# Builds the family folders and their transformers references on the GPU machine (python3 with torch, transformers,
# tokenizers, tiktoken, sentencepiece) and packs them as $OUT/families.tar.gz. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
python3 -c 'import transformers, torch, tokenizers; print("transformers", transformers.__version__, "torch", torch.__version__, "tokenizers", tokenizers.__version__)'
python3 families.py sources "$work/families"
python3 reference.py "$work/families"
tar czf "${OUT:-.}/families.tar.gz" -C "$work" families
ls -la "$work"/families/*
