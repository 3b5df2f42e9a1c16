"""Tokenizers through the `tokenizers` library: from tokenizer.json, or rebuilt from
the BPE vocabulary and merges a GGUF file carries in its metadata."""

from __future__ import annotations

from .errors import CheckpointError

__all__ = ["tokenizer_from_json", "tokenizer_from_gguf"]

# llama.cpp pre-tokenizer names whose Hugging Face counterpart is byte-level BPE with
# digits split one by one before the GPT-2 regex (SmolLM's tokenizer.json does this)
_DIGIT_SPLIT_PRE = {"smollm", "smaug-bpe", "llama3", "llama-bpe"}
_PLAIN_GPT2_PRE = {"gpt2", "default", None}


def tokenizer_from_json(text: str, source: str):
    from tokenizers import Tokenizer
    try:
        tok = Tokenizer.from_str(text)
        tok.no_padding()  # sentence-transformers files pad to a fixed length; we feed exact lengths
        tok.no_truncation()
        return tok
    except Exception as e:
        raise CheckpointError(f"{source}: tokenizer.json cannot be read ({str(e)[:160]})") from None


def tokenizer_from_gguf(fields: dict, source: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    kind = fields.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise CheckpointError(f"{source}: GGUF tokenizer.ggml.model={kind!r} is not supported; expected 'gpt2' "
                              f"(byte-level BPE)")
    tokens, merges = fields.get("tokenizer.ggml.tokens"), fields.get("tokenizer.ggml.merges")
    if not tokens or not merges:
        raise CheckpointError(f"{source}: GGUF metadata lacks tokenizer.ggml.tokens or tokenizer.ggml.merges")
    pre = fields.get("tokenizer.ggml.pre")
    if pre not in _DIGIT_SPLIT_PRE | _PLAIN_GPT2_PRE:
        raise CheckpointError(f"{source}: GGUF tokenizer.ggml.pre={pre!r} is not supported; expected one of "
                              f"{sorted(p for p in _DIGIT_SPLIT_PRE | _PLAIN_GPT2_PRE if p)}")
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    try:
        tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    except Exception as e:  # the Rust side raises a bare Exception for inconsistent vocab/merges
        raise CheckpointError(f"{source}: GGUF tokenizer vocabulary/merges are inconsistent ({str(e)[:160]})") \
            from None
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in _DIGIT_SPLIT_PRE:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    types = fields.get("tokenizer.ggml.token_type") or []
    special = [t for t, ty in zip(tokens, types) if ty == 3]  # 3 = control tokens in GGUF
    if special:
        tok.add_special_tokens(special)
    return tok
