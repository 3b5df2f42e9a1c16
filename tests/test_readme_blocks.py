"""README tables are copies of generated result files, never typed by hand."""

import pytest

from tests.script_loader import ROOT, load_script


def _sync():
    return load_script("benchmarks/readme_sync.py", "readme_sync")


def test_readme_blocks_match_their_result_files():
    mod = _sync()
    readme = (ROOT / "README.md").read_text()
    assert mod.BLOCK.findall(readme), "README.md has no generated blocks"
    assert mod.synced(readme) == readme, "README.md is out of date: run python benchmarks/readme_sync.py"


def test_a_hand_edited_block_is_caught(tmp_path):
    mod = _sync()
    (tmp_path / "t.md").write_text("| a | 1 |\n")
    text = "x\n<!-- begin: results/t.md -->\n| a | 2 |\n<!-- end: results/t.md -->\ny\n"
    assert mod.synced(text, tmp_path) == "x\n<!-- begin: results/t.md -->\n| a | 1 |\n<!-- end: results/t.md -->\ny\n"
    with pytest.raises(FileNotFoundError, match="results/missing.md"):
        mod.synced(text.replace("t.md", "missing.md"), tmp_path)
