"""Real checkpoints for the functional core: weights, config and tokenizer.

    ck = load_checkpoint("smollm2_135m")          # bundled name (pip-installed asset) or a path
    ck.config.layers, ck.tensor("layers.0.q"), ck.tokenizer.encode("text")

Formats: GGUF through the `gguf` package (F32/F16/BF16/Q8_0/Q4_0/Q4_1 tensors,
dequantized to float32), safetensors through the `safetensors` package (a file, a
directory of shards, or a zip holding them), configs from config.json or GGUF metadata,
tokenizers through the `tokenizers` library (tokenizer.json, or BPE vocab/merges from
GGUF metadata). Tensors are renamed to one canonical layout (`embed`, `layers.N.q`,
`layers.N.mlp_up`, ...; see names.py) so the forward pass never sees file conventions.
Anything unsupported, missing, misshapen or non-finite is one `CheckpointError`
naming the file and the tensor.
"""

from .assets import BUNDLED_CHECKPOINTS, bundled_checkpoint_path
from .config import LMConfig
from .errors import CheckpointError
from .loader import Checkpoint, load_checkpoint

__all__ = ["load_checkpoint", "Checkpoint", "LMConfig", "CheckpointError", "BUNDLED_CHECKPOINTS",
           "bundled_checkpoint_path"]
