"""``ddpayne inspect``: the static HTML report (ddpayne.report), its bad-input messages, and a real browser.

The run folder is built by hand (a small untrained MLP emulator, prepared spectra drawn from it, a catalogue
written by the pipeline's writer) so that the tests take seconds; the report on the demo's real output is
checked by hand (docs/inspect.rst).
"""
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from ddpayne import registry
from ddpayne.flags import Flag
from ddpayne.io.batch import SpectrumBatch
from ddpayne.pipeline.catalogue import write_catalogue
from ddpayne.pipeline.cli import main
from ddpayne.report import ReportInputError, figures, make_report

LABELS = ("TEFF", "LOGG", "FE_H", "MG_FE", "CA_FE")
WAVE = np.r_[np.arange(5150.0, 5300.0, 0.8), np.arange(8480.0, 8560.0, 0.8)]   # a grid with a gap


def _line_list(path: Path) -> Path:
    Table({"WAVE_AIR": [5167.321, 5172.684, 5183.604, 5270.4, 8498.023, 8542.091],
           "SPECIES": [12.0, 12.0, 12.0, 26.0, 20.1, 20.1], "LOGGF": [-0.93, -0.45, -0.17, -1.3, -1.3, -0.4],
           "EP": [2.71, 2.71, 2.72, 1.61, 1.69, 1.70]}).write(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder: model/emulator.pt, prepared/coadd-{a,b}.fits, catalogue.fits (target 102 observed twice)."""
    root = tmp_path_factory.mktemp("run")
    lo = np.array([4000.0, 1.0, -2.0, -0.3, -0.3])
    hi = np.array([6500.0, 5.0, 0.5, 0.6, 0.6])
    emu = registry.create("emulator", "mlp", label_names=LABELS, wavelength=WAVE, label_min=lo, label_max=hi,
                          n_hidden=6, seed=3)
    emu.initialize(np.full(WAVE.size, 0.9))
    (root / "model").mkdir()
    emu.save(root / "model" / "emulator.pt")
    (root / "prepared").mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for fname, ids in (("coadd-a.fits", [101, 102, 103]), ("coadd-b.fits", [102, 104])):
        labels = lo + (hi - lo) * rng.uniform(0.2, 0.8, (len(ids), len(LABELS)))
        flux = emu.predict(labels) + rng.normal(0, 0.02, (len(ids), WAVE.size))
        ivar = np.full(flux.shape, 2500.0)
        ivar[:, 20:26] = 0.0                                        # a masked stretch
        meta = Table({"ID": [str(i) for i in ids], "TARGETID": ids, "SOURCE_FILE": [f"/data/{fname}"] * len(ids),
                      "SNR": np.full(len(ids), 50.0), "FLAG": np.zeros(len(ids), np.int64)})
        SpectrumBatch(WAVE, flux, ivar, meta).write(root / "prepared" / fname)
        for i, lab in zip(ids, labels):
            rows.append({"ID": str(i), "TARGETID": i, "SOURCE_FILE": f"/data/{fname}", "SNR": 50.0,
                         **dict(zip(LABELS, lab)), **{f"{n}_ERR": 0.01 for n in LABELS},
                         **{f"{n}_ERR_TOT": 0.02 for n in LABELS}, "RCHI2": 1.0, "QFLAG_CHI2": 0.5,
                         "FLAG": 0, "FLAG_REASON": ""})
    cat = Table(rows=rows)
    cat["RCHI2"][2] = 3.0
    cat["QFLAG_CHI2"][2] = 9.0
    cat["FLAG"][2] = int(Flag.CHI2_OUTLIER)
    cat["FLAG"][4] = int(Flag.AT_BOUND | Flag.NO_PARALLAX)
    cat["BOUND_MASK"] = np.array([0, 0, 0, 0, 1 << 3])
    cat.meta["LABELS"] = list(LABELS)
    write_catalogue(cat, root / "catalogue.fits", provenance={"config": {"training": {"model": ""}}})
    _line_list(root / "lines.ecsv")
    return root


def test_report_pages_labels_flags_repeats(run, tmp_path):
    index = make_report(run / "catalogue.fits", tmp_path / "rep", targetids=["102"], worst_chi2=1,
                        line_list=run / "lines.ecsv")
    text = index.read_text()
    assert "3 star(s) selected" in text and "CHI2_OUTLIER" in text
    pages = sorted(p.name for p in (tmp_path / "rep").glob("star-*.html"))
    assert len(pages) == 3 and all(p in text for p in pages)
    star = (tmp_path / "rep" / pages[0]).read_text()     # one of target 102's two observations
    assert "MG_FE" in star and "formal error" in star and "CRB (model)" in star
    assert "Mg I" in star                                 # windows named from the line list
    assert star.count("href='star-") >= 1                 # the repeat observation links to its page
    flagged = (tmp_path / "rep" / next(p for p in pages if "-2.html" in p)).read_text()
    assert "CHI2_OUTLIER" in flagged and "the model does not describe the spectrum" in flagged
    assert (tmp_path / "rep" / "_static" / "report.js").exists()
    if figures.have_bokeh():
        assert list((tmp_path / "rep" / "_static").glob("bokeh-*.js"))  # BokehJS once, beside the pages
    # by flag name
    make_report(run / "catalogue.fits", tmp_path / "f", flags=["AT_BOUND"], interactive=False)
    assert [p.name for p in (tmp_path / "f").glob("star-*.html")] == ["star-104-4.html"]
    with pytest.raises(ReportInputError, match="unknown flag"):
        make_report(run / "catalogue.fits", tmp_path / "f", flags=["NOPE"])


def test_static_fallback_embeds_png(run, tmp_path):
    index = make_report(run / "catalogue.fits", tmp_path / "rep", flagged=True, interactive=False,
                        line_list=run / "lines.ecsv")
    star = (tmp_path / "rep" / "star-104-4.html").read_text()
    assert "data:image/png;base64," in star and "bokeh" not in star.lower().split("</head>")[0]
    assert "at the bound of their range (BOUND_MASK): MG_FE" in star and "NO_PARALLAX" in star
    assert "data:image/png;base64," in index.read_text()


def test_bad_input_messages(run, tmp_path):
    cat = run / "catalogue.fits"
    with pytest.raises(ReportInputError, match=r"TARGETID \['999'\] not in the catalogue"):
        make_report(cat, tmp_path / "r", targetids=["999"])
    with pytest.raises(ReportInputError, match="nothing selected"):
        make_report(cat, tmp_path / "r")
    with pytest.raises(ReportInputError, match="does not exist"):
        make_report(tmp_path / "nowhere.fits", tmp_path / "r", flagged=True)
    # catalogue without the needed columns
    t = Table.read(cat, hdu="CATALOGUE")
    t.remove_columns(["SOURCE_FILE", "MG_FE"])
    t.meta.pop("LABEL03", None)
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    t.write(moved / "bad.fits")
    with pytest.raises(ReportInputError, match=r"lacks the column\(s\) \['SOURCE_FILE'"):
        make_report(moved / "bad.fits", tmp_path / "r", flagged=True)
    # prepared spectra missing: the message names the file looked for
    (moved / "prepared" / "coadd-b.fits").unlink()
    with pytest.raises(ReportInputError, match=r"looked for .*prepared/coadd-b.fits"):
        make_report(moved / "catalogue.fits", tmp_path / "r", targetids=["104"])
    # a catalogue copied away from its run folder: no prepared/ beside it
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(cat, alone / "catalogue.fits")
    with pytest.raises(ReportInputError, match=r"no folder .*alone/prepared.*--run-dir"):
        make_report(alone / "catalogue.fits", tmp_path / "r", flagged=True)
    # ... found again with --run-dir; an explicit model that is not there is an error
    with pytest.raises(ReportInputError, match=r"model .*none.pt does not exist"):
        make_report(alone / "catalogue.fits", tmp_path / "r", flagged=True, run_dir=run, model=tmp_path / "none.pt")
    # no model found: a report without model panels (and a warning naming where it looked)
    shutil.rmtree(moved / "model")
    index = make_report(moved / "catalogue.fits", tmp_path / "nomodel", targetids=["101"], interactive=False)
    assert "not found" in index.read_text()


def test_cli_inspect(run, tmp_path, capsys):
    assert main(["inspect", str(run / "catalogue.fits"), "--targetid", "101", "103", "-o", str(tmp_path / "r"),
                 "--line-list", str(run / "lines.ecsv"), "--static"]) == 0
    assert Path(capsys.readouterr().out.strip()).name == "index.html"
    assert len(list((tmp_path / "r").glob("star-*.html"))) == 2
    assert main(["inspect", str(run / "catalogue.fits"), "--targetid", "7", "-o", str(tmp_path / "r")]) == 2


# ------------------------------------------------------------------------------------------ real browser
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]

# pixels of every canvas in the page, shadow roots included (Bokeh draws into canvases inside shadow DOM):
# the number of canvases and the standard deviation of their grey levels
CANVAS_STATS = """() => {
  const found = [];
  const walk = (root) => {
    root.querySelectorAll('*').forEach((el) => {
      if (el.tagName === 'CANVAS') { found.push(el); }
      if (el.shadowRoot) { walk(el.shadowRoot); }
    });
  };
  walk(document);
  let n = 0, s = 0, s2 = 0;
  for (const c of found) {
    if (!c.width || !c.height) { continue; }
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 64) {
      const g = d[i + 3] ? (d[i] + d[i + 1] + d[i + 2]) / 3 : 255;
      n += 1; s += g; s2 += g * g;
    }
  }
  return {canvases: found.length, std: n ? Math.sqrt(s2 / n - (s / n) ** 2) : 0};
}"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium; .ci/run "
                                                  "installs it): no real-browser test")
def test_report_in_headless_chromium(run, tmp_path):
    """Chromium opens the index and a star page from disk: no console error, plots drawn, screenshot not blank."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    pytest.importorskip("bokeh", reason="bokeh (the inspect extra) is not installed: no interactive plots to check")
    from PIL import Image

    index = make_report(run / "catalogue.fits", tmp_path / "rep", targetids=["102"], line_list=run / "lines.ecsv")
    star = min((tmp_path / "rep").glob("star-*.html"))
    static = make_report(run / "catalogue.fits", tmp_path / "png", targetids=["101"], interactive=False,
                         line_list=run / "lines.ecsv")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            for url, min_canvases in ((index.as_uri(), 2), (star.as_uri(), 3)):
                page.goto(url)
                page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=20000)
                page.wait_for_timeout(800)
                stats = page.evaluate(CANVAS_STATS)
                assert stats["canvases"] >= min_canvases and stats["std"] > 5, (url, stats)
                shot = tmp_path / (Path(url).stem + ".png")
                page.screenshot(path=str(shot), full_page=True)
                grey = np.asarray(Image.open(shot).convert("L"), float)
                assert grey.std() > 10 and (grey < 128).mean() > 0.005, (url, grey.std())
            # the table sorts and filters
            page.goto(index.as_uri())
            page.fill("input[data-filter='stars']", "SNR>1000")
            assert page.locator("#stars tbody tr:not(.hidden)").count() == 0
            page.fill("input[data-filter='stars']", "")
            assert page.locator("#stars tbody tr:not(.hidden)").count() == 2
            # the static fallback: the images decode
            page.goto(static.as_uri())
            sizes = page.evaluate("() => Array.from(document.images).map(i => i.naturalWidth)")
            assert sizes and min(sizes) > 100
            assert not errors, errors
            assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests  # no network
        finally:
            browser.close()
