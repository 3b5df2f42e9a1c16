"""The CSVs carry their inputs as constant columns, as their JSON siblings do (session 14): `cosim simulate
--out x.csv` (and a run's report.csv) after the per-op columns, serve's requests.csv after the per-request
ones; tables of many runs concatenate into one that `pandas.read_csv` reads and groups by any input."""
import json

import pandas as pd

import cosim
from cosim.cli import main
from cosim.report import INPUT_COLUMNS


def _simulate_csv(tmp_path, name, *extra):
    out = tmp_path / f"{name}.csv"
    assert main(["simulate", "--model", "llama3_8b", "--hw", "h100_sxm", "--batch", "8", "--seq", "4096",
                 "--out", str(out), *extra]) == 0
    return out


def test_simulate_csvs_concatenate_into_one_table(tmp_path, capsys):
    a = _simulate_csv(tmp_path, "a")
    b = _simulate_csv(tmp_path, "b", "--weights", "mxfp4", "--level", "analytical")
    capsys.readouterr()
    assert a.read_text().startswith("op,kind,phase")  # the per-op columns first, as before
    ta, tb = pd.read_csv(a), pd.read_csv(b)
    assert list(ta.columns[-len(INPUT_COLUMNS):]) == INPUT_COLUMNS
    both = pd.concat([ta, tb])
    runs = both.groupby(["weights", "level_requested"]).size()
    assert dict(runs) == {("bf16", "roofline"): len(ta), ("mxfp4", "analytical"): len(tb)}
    row = tb.iloc[0]
    assert (row["model"], row["hw"], row["batch"], row["seq"], row["acts"], row["kv"], row["attention"]) == \
        ("llama3_8b", "h100_sxm", 8, 4096, "bf16", "bf16", "fused")
    assert not row["compute_fallback"] and pd.isna(row["recipe"]) and pd.isna(row["overlap"])
    # the per-op `level` is the level that priced each op; the one asked for is level_requested
    assert set(tb["level"]) <= {"analytical", "roofline"} and set(tb["level_requested"]) == {"analytical"}


def test_csv_inputs_are_the_json_totals(tmp_path):
    tr = cosim.build_trace("llama3_8b", "decode", batch=4, seq=1024, weights="mxfp4", recipe="kivi2")
    rep = cosim.simulate(tr, "h100_sxm", level="roofline")
    csv = pd.read_csv(pd.io.common.StringIO(rep.to_csv()))
    t = json.loads(rep.to_json())["totals"]
    row = csv.iloc[0]
    assert (row["model"], row["hw"], row["batch"], row["seq"], row["recipe"]) == \
        (t["model"], t["hw"], t["batch"], t["seq"], t["recipe"])
    assert (row["weights"], row["acts"], row["kv"]) == (t["formats"]["weights"], t["formats"]["acts"],
                                                        t["formats"]["kv"])
    assert row["attention"] == t["inputs"]["attention"] and row["level_requested"] == t["level_requested"]


def test_lazy_and_built_rows_write_the_same_csv():
    # a roofline report keeps its rows as columns until read (pandas writes it); once read, rows_to_csv does
    tr = cosim.build_trace("llama3_8b", "decode", batch=8, seq=4096)
    lazy = cosim.simulate(tr, "h100_sxm").to_csv()
    rep = cosim.simulate(tr, "h100_sxm")
    rep.rows  # noqa: B018 (builds the row dicts)
    assert rep.to_csv() == lazy


def test_a_parallel_report_names_its_layout(tmp_path):
    tr = cosim.build_trace("llama3_8b", "decode", batch=8, seq=1024, parallel={"tp": 2})
    rep = cosim.simulate(tr, "dgx_h100", overlap=0.5)
    row = pd.read_csv(pd.io.common.StringIO(rep.to_csv())).iloc[0]
    assert row["parallel"] == rep.meta["parallel"]["label"] and row["overlap"] == 0.5 and row["hw"] == "dgx_h100"


def test_serve_requests_csv_carries_the_run_options(tmp_path, capsys):
    runs = []
    for qps, sched in ((2, "continuous"), (4, "chunked")):
        out = tmp_path / f"s{qps}"
        assert main(["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--qps", str(qps), "--requests", "12",
                     "--prompt-len", "128", "--output-len", "8", "--scheduler", sched, "--out", str(out)]) == 0
        runs.append(out)
    capsys.readouterr()
    tables = [pd.read_csv(r / "requests.csv") for r in runs]
    assert list(tables[0].columns[:11]) == ["rid", "arrival_s", "queueing_s", "ttft_s", "tpot_s", "e2e_s",
                                            "prompt_len", "output_len", "preemptions", "replica", "decode_replica"]
    both = pd.concat(tables)
    assert dict(both.groupby(["qps", "scheduler"]).size()) == {(2.0, "continuous"): 12, (4.0, "chunked"): 12}
    cfg = json.loads((runs[0] / "summary.json").read_text())["config"]
    row = tables[0].iloc[0]
    for k in ("model", "hw", "level", "acts", "kv", "attention", "seed", "block_size", "max_num_seqs"):
        assert row[k] == cfg[k], k
    # unset in the options (null in summary.json): the format the steps were priced in
    assert cfg["weights"] is None and row["weights"] == "bf16"
    # the request's own lengths, not the stream's setting
    assert (tables[0]["prompt_len"] == 128).all() and (tables[0]["output_len"] == 8).all()


def test_serve_nested_options_are_json_text():
    from cosim.serving.config import ServeConfig
    from cosim.serving.output import request_inputs
    cfg = ServeConfig(model="llama3_8b", hw="dgx_h100", parallel={"tp": 2, "pp": 1}, qps=1.0)
    got = request_inputs(cfg)
    assert got["parallel"] == '{"pp":1,"tp":2}' and json.loads(got["parallel"]) == {"tp": 2, "pp": 1}
    assert "prompt_len" not in got and "output_len" not in got
