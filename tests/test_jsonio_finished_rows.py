"""cosim.jsonio.finished_rows: the resume reader of the benchmarks' JSON-lines logs."""
from cosim.jsonio import finished_rows


def test_reads_matching_rows_and_skips_a_cut_line(tmp_path):
    p = tmp_path / "log.jsonl"
    assert finished_rows(p, tokens_window=512) == []
    p.write_text('{"label": "a", "tokens_window": 512}\n{"label": "b", "tokens_window": 128}\n{"label": "c", "tok')
    assert finished_rows(p, tokens_window=512) == [{"label": "a", "tokens_window": 512}]
    assert [d["label"] for d in finished_rows(p)] == ["a", "b"]
