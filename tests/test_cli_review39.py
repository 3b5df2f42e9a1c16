"""Review 39: `cosim validate` checks --plot / --json before the work (the other commands' extension rules, a
missing folder made, the path written printed); `cosim recipe --accuracy` runs its KV twin at the priced context
and never ignores --checkpoint / --prompt silently; `cosim plan` refuses a --routing or --max-microbatches it
would ignore; the stored-operand note is true whether or not the trace carries a dequantize op."""

import re
from pathlib import Path

import pytest

from cosim.cli import main

ROOT = Path(__file__).resolve().parents[1]
OPS = str(ROOT / "validation" / "h100_ops.csv")


def _refused(capsys, argv, *parts):
    """Exit 2, one `error:` line holding every part, nothing on stdout (refused before the work)."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    for p in parts:
        assert p in err, (p, err)
    return err


@pytest.mark.parametrize("name, ext", [("x.txt", "'.txt'"), ("x.jpg", "'.jpg'"), ("noext", "'(none)'")])
def test_validate_plot_extension_refused_before_the_work(tmp_path, monkeypatch, capsys, name, ext):
    monkeypatch.chdir(tmp_path)  # was: a traceback (.txt), a JPEG (.jpg), "wrote noext" over noext.png
    _refused(capsys, ["validate", "--hw", "h100_sxm", "--measurements", OPS, "--plot", name],
             f"--plot: {name}: unknown extension {ext}", ".png or .svg or .pdf")
    assert list(tmp_path.iterdir()) == []


def test_validate_json_extension_refused_and_missing_folders_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, ["validate", "--hw", "h100_sxm", "--measurements", OPS, "--json", "v.txt"],
             "--json: v.txt: unknown extension '.txt'", ".json")
    # was: the whole validation printed, then `error: ... No such file or directory` for --json
    assert main(["validate", "--hw", "h100_sxm", "--measurements", OPS, "--json", "newdir/v.json",
                 "--plot", "figs/s.svg"]) == 0
    out = capsys.readouterr().out
    assert "wrote figs/s.svg" in out and "wrote newdir/v.json" in out
    assert (tmp_path / "newdir" / "v.json").stat().st_size > 0 and (tmp_path / "figs" / "s.svg").is_file()


def test_scatter_plot_api_refuses_what_matplotlib_would_rename(tmp_path):
    from cosim.validate import scatter_plot
    from workloads.io import InputError
    with pytest.raises(InputError, match=r"noext: unknown extension '\(none\)'; expected \.png or \.svg or \.pdf"):
        scatter_plot(None, tmp_path / "noext")
    assert list(tmp_path.iterdir()) == []


def test_recipe_twin_reads_the_priced_kept_tokens_by_default(capsys):
    assert main(["recipe", "h2o", "--accuracy"]) == 0
    out = capsys.readouterr().out
    kept = re.search(r"context 2048, kept (\d+)", out).group(1)
    assert re.search(r"tokens_read (\d+)", out).group(1) == kept == "408"  # was: tokens_read 818 (--prompt 4096)
    assert "--prompt" not in out


def test_recipe_twin_prompt_other_than_seq_is_noted(capsys):
    assert main(["recipe", "h2o", "--accuracy", "--prompt", "1024", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert ("note: the KV twin (h2o) ran a 1024-token prompt (--prompt 1024), not the 2048-token context priced "
            "above (--seq 2048)") in out
    assert "tokens_read 204" in out


def test_recipe_checkpoint_checked_for_every_kind_and_refused_where_unread(tmp_path, capsys):
    missing = str(tmp_path / "nonexist.safetensors")
    for spec in ("h2o", "mxfp4_weights"):  # was: h2o ignored the missing file silently
        _refused(capsys, ["recipe", spec, "--accuracy", "--checkpoint", missing],
                 f"--checkpoint: {missing}: no such checkpoint file or directory", "expected a .safetensors file")
    there = tmp_path / "m.safetensors"
    there.write_bytes(b"x")
    _refused(capsys, ["recipe", "h2o", "--accuracy", "--checkpoint", str(there)],
             f"--checkpoint: {there}: recipe h2o's twin reads no checkpoint", "or no --checkpoint")
    _refused(capsys, ["recipe", "mxfp4_weights", "--accuracy", "--checkpoint", str(there)],
             f"--checkpoint: {there}: not a readable safetensors file")


@pytest.mark.parametrize("argv, flag", [(["h2o", "--prompt", "100"], "--prompt"),
                                        (["mxfp4_weights", "--checkpoint", "x.safetensors"], "--checkpoint"),
                                        (["kivi2", "--seed", "3"], "--seed")])
def test_recipe_twin_options_without_accuracy_are_refused(capsys, argv, flag):
    _refused(capsys, ["recipe", *argv], f"{flag}: got ", "only to the accuracy twin", "expected --accuracy")


def test_recipe_prompt_refused_for_a_recipe_without_a_kv_twin(capsys):
    _refused(capsys, ["recipe", "mxfp4_weights", "--accuracy", "--steps", "3"],
             "--steps: got 3", "recipe mxfp4_weights has no KV twin")


@pytest.mark.parametrize("extra, parts", [
    (["--routing", "sampled"], ("plan: routing (CLI --routing): got 'sampled'", "llama3_8b has no experts",
                                "drop it")),
    (["--batch", "8", "--max-microbatches", "2", "--microbatches", "4"],
     ("--max-microbatches): got 2", "--microbatches, is fixed at 4", "4 exceeds the cap", "drop one")),
    (["--batch", "8", "--max-microbatches", "8", "--microbatches", "4"], ("got 8", "fixed at 4")),
    (["--max-microbatches", "0"], ("--max-microbatches): got 0", "expected a positive integer")),
])
def test_plan_refuses_options_it_would_ignore(capsys, extra, parts):
    _refused(capsys, ["plan", "--model", "llama3_8b", "--system", "dgx_h100", *extra], *parts)


def test_plan_routing_without_an_ep_layout_is_noted():
    from cosim.plan import plan
    notes = plan("mixtral_8x7b", "dgx_h100", max_devices=1, routing="sampled").notes
    assert any(n.startswith("routing sampled: no expert-parallel layout (ep > 1) was searched") for n in notes)
    assert not any(n.startswith("routing") for n in plan("mixtral_8x7b", "dgx_h100", max_devices=1).notes)


def test_stored_operand_note_true_beside_a_recipes_dequantize_row():
    import cosim
    rep = cosim.simulate(cosim.build_trace("llama3_8b", phase="decode", batch=8, seq=4096, recipe="kivi2"), "h100_sxm")
    # the recipe's conversion, priced as its own row
    assert any(r["op"] == "kivi2.dequant" and r["latency_s"] > 0 for r in rep.rows)
    note = next(n for n in rep.notes if n.startswith("KV cache in int2:"))
    assert "(the matrix unit's int2 -> bf16 conversion is not charged; a dequantize op in the trace" in note
    assert "is priced as its own row)" in note
