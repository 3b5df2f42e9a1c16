"""The HTML report in a real headless browser (Debian's chromium over the DevTools pipe):
it loads with no console errors, every figure decodes, the per-op table sorts, and the
screenshot shows the summary, the roofline and the table where the DOM says they are."""

import numpy as np
import pytest

from headless_browser import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed: `apt-get install -y chromium` (Debian) runs the browser "
                             "test of the HTML report")

# cosim.plots colour of "attention" (#d62728) drawn at alpha 0.75 over the white plot background
ATTENTION_RGB = 0.75 * np.array([0xd6, 0x27, 0x28]) / 255 + 0.25


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import cosim
    from cosim.html_report import write_report
    hw = cosim.load_hw("h100_sxm")
    rep = cosim.simulate(cosim.build_trace("llama3_8b", phase="decode", batch=8, seq=4096, weights="mxfp4"), hw)
    out = tmp_path_factory.mktemp("report")
    interactive = __import__("importlib").util.find_spec("plotly") is not None
    return rep, write_report(rep, hw, out, interactive=interactive)


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    yield b
    b.close()


def _rect(b, sel):
    return b.eval(f"(() => {{ const r = document.querySelector({sel!r}).getBoundingClientRect();"
                  f" return [r.left, r.top + window.scrollY, r.width, r.height]; }})()")


def test_report_loads_without_console_errors_and_shows_everything(report, browser, tmp_path):
    rep, paths = report
    browser.open(paths["html"].as_uri())
    assert browser.errors() == []
    # every figure decoded to a real image
    sizes = browser.eval("[...document.images].map(i => [i.id, i.naturalWidth, i.naturalHeight])")
    assert {s[0] for s in sizes} >= {"fig-roofline", "fig-breakdown", "fig-footprint"}
    assert all(w > 300 and h > 100 for _, w, h in sizes)
    # summary in units people read, formats by name, no install paths
    summary = browser.eval("document.querySelector('#summary').innerText")
    assert "ms" in summary and "tokens/s" in summary and "TFLOP/s" in summary and "GB" in summary
    text = browser.eval("document.body.innerText")
    assert "MXFP4 (4.25 bits)" in text and '{"weights"' not in text and "site-packages" not in text
    heads = browser.eval("[...document.querySelectorAll('#ops th')].map(t => t.innerText)")
    for h in ("FLOPs", "bytes", "intensity", "bound", "format", "provenance"):
        assert h in heads
    assert browser.eval("document.querySelectorAll('#ops tbody tr').length") == len(rep.rows)


def test_table_sorts_by_raw_values(report, browser):
    rep, paths = report
    browser.open(paths["html"].as_uri())
    col = browser.eval("[...document.querySelectorAll('#ops th')].findIndex(t => t.innerText === 'latency')")
    browser.eval(f"document.querySelectorAll('#ops th')[{col}].click()")
    first = browser.eval("document.querySelector('#ops tbody tr').cells[0].innerText")
    assert first == max(rep.rows, key=lambda r: r["latency_s"])["op"] == "attention"
    browser.eval(f"document.querySelectorAll('#ops th')[{col}].click()")  # second click: ascending
    vals = browser.eval(f"[...document.querySelectorAll('#ops tbody tr')].map(r => parseFloat(r.cells[{col}].dataset.v))")
    assert vals == sorted(vals)
    assert browser.errors() == []


def test_screenshot_shows_summary_roofline_and_table(report, browser, tmp_path):
    from matplotlib.image import imread
    _, paths = report
    browser.open(paths["html"].as_uri(), width=1200, height=900)
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    img = imread(shot)[..., :3]
    for sel in ("#summary", "#fig-roofline", "#ops"):
        x, y, w, h = (int(v) for v in _rect(browser, sel))
        assert w > 100 and h > 50 and y + h <= img.shape[0], sel
        region = img[y:y + h, x:x + w]
        dark = (region.sum(axis=2) < 1.2).mean()  # text, lines and markers drawn in it
        assert dark > 0.005, f"{sel} looks blank in the screenshot ({dark:.4f} dark pixels)"
    x, y, w, h = (int(v) for v in _rect(browser, "#fig-roofline"))
    roof = img[y:y + h, x:x + w]
    red = (np.abs(roof - ATTENTION_RGB).max(axis=2) < 0.12).sum()
    assert red > 100, "the attention point is not visible on the roofline"


def test_interactive_page_loads_without_errors(report, browser):
    _, paths = report
    if "interactive" not in paths:
        pytest.skip("plotly not installed (pip install 'cosim[interactive]')")
    browser.open(paths["interactive"].as_uri())
    assert browser.errors() == []
    names = browser.eval("document.querySelector('.js-plotly-plot').data.map(t => t.name)")
    assert "attention" in names and "gemm" in names
    hover = browser.eval("document.querySelector('.js-plotly-plot').data.find(t => t.name === 'attention').hovertext[0]")
    assert "attention" in hover and "FLOP/B" in hover
