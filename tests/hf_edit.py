"""Write a copy of a test config.json with fields changed or removed (for config-import tests)."""

import json
from pathlib import Path

DATA = Path(__file__).parent / "data" / "hf_configs"


def write_config(tmp_path, base: str, **changes) -> Path:
    """`base`.json from tests/data/hf_configs with each change applied: key=value sets it, "-key"=None removes
    it (a keyword cannot start with '-': pass **{"-key": None}); returns the written config.json's path."""
    cfg = json.loads((DATA / f"{base}.json").read_text())
    for k, v in changes.items():
        if v is None and k.startswith("-"):
            cfg.pop(k[1:], None)
        else:
            cfg[k] = v
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p
