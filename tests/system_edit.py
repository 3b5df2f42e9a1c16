"""Write a copy of a bundled system file with its ``collectives`` block edited (for bad-input tests)."""

from pathlib import Path

import yaml

SYSTEMS = Path(__file__).resolve().parents[1] / "cosim" / "configs" / "systems"


def write_system(tmp_path, mutate, name: str = "dgx_h100") -> str:
    """mutate(collectives_dict) edits the block in place; returns the path of the written copy."""
    doc = yaml.safe_load((SYSTEMS / f"{name}.yaml").read_text())
    mutate(doc["collectives"])
    p = tmp_path / "sys.yaml"
    p.write_text(yaml.safe_dump(doc))
    return str(p)
