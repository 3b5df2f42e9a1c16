"""`cosim run --out o` with a `serve:` block writes o/serve/...: a file named o/serve made the whole run fail at the
end with a bare 'File exists' (review finding, session 13); it is refused before anything runs, --force or not."""
import pytest

from cosim.cli._paths import check_no_overwrite
from workloads.io import InputError


@pytest.mark.parametrize("force", [False, True])
def test_a_file_where_a_folder_goes_is_refused_first(tmp_path, force):
    (tmp_path / "serve").write_text("")
    with pytest.raises(InputError, match=r"serve: exists and is not a directory; expected a folder for serve/requests"):
        check_no_overwrite(tmp_path, ["report.csv", "serve/requests.csv"], "--out", force)


def test_a_folder_where_a_file_goes_is_refused(tmp_path):
    (tmp_path / "report.csv").mkdir()
    with pytest.raises(InputError, match=r"report.csv: is a directory; expected the file report.csv"):
        check_no_overwrite(tmp_path, ["report.csv"], "--out", True)


def test_cli_refuses_before_running(tmp_path, capsys):
    from cosim.cli import main
    exp = tmp_path / "sv.yaml"
    exp.write_text("model: llama3_8b\nhw: h100_sxm\nserve: {qps: 5, requests: 20}\n")
    out = tmp_path / "o"
    out.mkdir()
    (out / "serve").write_text("")
    assert main(["run", str(exp), "--out", str(out), "--no-accuracy"]) == 2
    err = capsys.readouterr().err
    assert "exists and is not a directory" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == ["serve"]
