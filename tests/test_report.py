"""`cadft report` on real run directories: a few steps of real training on a tiny model.

The per-sample and rewrite files are hand-written (their writers are tested elsewhere).
The browser test renders the page in headless Chromium (`apt-get install chromium`) and
is skipped, saying so, where no Chromium binary is installed.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cadft.cli.report import main as report_main
from cadft.report import ReportError, figures, load_run, render_report, rewrite_rounds, write_report

LOSS_TYPES = ("nll", "dft", "cadft")
NASTY = '<script>alert("x")</script> & \'quoted\''


def _train(out: Path, loss_type: str, with_eval: bool = False) -> None:
    from cadft import CADFTConfig, CADFTTrainer
    from cadft.data import mixed_quality_demos
    from cadft.model.tiny import tiny_llama, tiny_tokenizer

    tok = tiny_tokenizer()
    evaluation = dict(eval_strategy="steps", eval_steps=2, per_device_eval_batch_size=4) if with_eval else {}
    args = CADFTConfig(
        str(out), max_steps=4, per_device_train_batch_size=4, logging_steps=1, report_to=[], bf16=False,
        gradient_checkpointing=False, use_cpu=True, max_length=256,
        save_strategy="no", loss_type=loss_type, learning_rate=1e-3, disable_tqdm=True, **evaluation,
    )
    trainer = CADFTTrainer(
        tiny_llama(tok), args=args, train_dataset=mixed_quality_demos(32),
        eval_dataset=mixed_quality_demos(8, seed=1) if with_eval else None, processing_class=tok,
    )
    trainer.train()
    trainer.save_state()
    meta = {"loss_type": loss_type, "model": "tiny-llama", "cadft_beta": 1.0, "data_args": {"dataset_path": None}}
    (out / "cadft_run.json").write_text(json.dumps(meta))


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# (sample_id, kind, compat start, weight start, compat end, weight end, completion)
SAMPLES = [
    (0, "plain", 0.50, 1.5, 0.70, 1.6, "Start with 5. Then 5 + 3 = 8.\nAnswer: 8"),
    (1, "foreign", 0.10, 0.3, 0.15, 0.25, "REG A <- 5; ADD A, 3; OUT A"),
    (2, "wrong", 0.20, 0.6, 0.25, 0.2, NASTY),
    (3, "wrong", 0.30, 0.9, 0.40, 0.4, "Start with 7. Then 7 + 1 = 9.\nAnswer: 9"),
    (4, "plain", 0.45, 1.4, 0.60, 1.3, "Start with 2. Then 2 + 2 = 4.\nAnswer: 4"),
]


def _sample_rows(stages=("start", "end")) -> list[dict]:
    rows = []
    for sid, kind, c0, w0, c1, w1, text in SAMPLES:
        for stage, c, w in (("start", c0, w0), ("end", c1, w1)):
            if stage in stages:
                rows.append({"sample_id": sid, "stage": stage, "compatibility": c, "weight": w, "num_tokens": 40,
                             "prompt": f"Question {sid}?", "completion": text, "kind": kind})
    return rows


def _rewrite(sid, rnd, step, before, after, accepted, original, rewrite=None, verdicts=("accepted",)):
    return {"sample_id": sid, "round": rnd, "step": step, "original": original, "rewrite": rewrite,
            "compat_before": before, "compat_after": after, "accepted": accepted, "num_candidates": len(verdicts),
            "candidates": [{"text": "...", "verdict": v, "reason": "", "compat": after} for v in verdicts],
            "generator": "tiny-llama"}


REWRITES = [
    _rewrite(1, 1, 2, 0.10, 0.30, True, "REG A <- 5; ADD A, 3", "Start with 5. Then 5 + 3 = 8.",
             ("rejected_verifier", "accepted")),
    _rewrite(2, 1, 2, 0.20, None, False, "wrong one", None, ("rejected_verifier", "rejected_no_gain")),
    _rewrite(3, 2, 4, 0.30, 0.45, True, "Start with 7. Then 7 + 1 = 9.", '<img src=x onerror="alert(1)">'),
]


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    dirs = {}
    for loss_type in LOSS_TYPES:
        dirs[loss_type] = root / f"out-{loss_type}"
        _train(dirs[loss_type], loss_type, with_eval=loss_type == "cadft")
    _write_jsonl(dirs["cadft"] / "sample_scores.jsonl", _sample_rows())
    _write_jsonl(dirs["cadft"] / "rewrites.jsonl", REWRITES)
    return dirs


@pytest.fixture(scope="module")
def three_run_report(run_dirs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert report_main([str(run_dirs[t]) for t in LOSS_TYPES] + ["--output", str(out), "--title", "3 <runs> & co"]) == 0
    return out


def _section(text: str, heading: str) -> str:
    """The HTML from `heading` to the end of the table that follows it."""
    start = text.index(heading)
    return text[start : text.index("</table>", start)]


def _rows(table_html: str) -> list[list[str]]:
    """Cell texts of each body row."""
    body = table_html[table_html.index("<tbody>") :]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def _column(table_html: str, header: str) -> int:
    return re.findall(r"<th>(.*?)</th>", table_html).index(header)


# ---- the report -----------------------------------------------------------------------


def test_single_run_has_every_section_and_only_embedded_pngs(run_dirs, tmp_path):
    out = write_report([run_dirs["cadft"]], tmp_path / "sub" / "r.html")
    text = out.read_text()
    for section in ('id="summary"', 'id="curves"', 'id="rewriting"', 'id="run-1"'):
        assert section in text
    for heading in ("Loss", "Compatibility", "Sample weights", "Optimisation", "Most down-weighted demonstrations",
                    "By kind of demonstration", "Rewriting rounds", "Accepted rewrites"):
        assert heading in text
    assert "cadft (out-cadft)" in text  # label: loss_type + directory name
    sources = re.findall(r'<img src="([^"]*)"', text)
    assert len(sources) == 7  # 5 training figures + 2 rewriting figures
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    # self-contained: nothing to fetch, nothing to run
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    assert "Content-Security-Policy" in text


def test_three_runs_are_overlaid_and_compared(run_dirs, three_run_report):
    runs = [load_run(run_dirs[t]) for t in LOSS_TYPES]
    figs = figures(runs)
    for name in ("loss", "optimisation", "tokens"):
        for ax in figs[name].axes:
            colours = {line.get_color() for line in ax.get_lines() if len(line.get_xdata())}
            assert len(colours) == 3, (name, ax.get_title())
    # Sample weights: only the CADFT run (the paper's estimator) has any, SFT and DFT weigh every row 1;
    # the effective sample size is the earlier estimator's
    drawn = {ax.get_title(): {line.get_color() for line in ax.get_lines() if len(line.get_xdata())}
             for ax in figs["weights"].axes}
    assert [len(c) for c in drawn.values()] == [1, 1, 0, 1], drawn
    assert len(figs["compatibility"].axes[0].collections) == 3  # one p10-p50 band per run
    assert figs["rewrite_outcomes"] is not None  # the cadft run has rewrites.jsonl

    text = three_run_report.read_text()
    summary = _section(text, 'id="summary"')
    for header in ("final loss", "final NLL", "final mean compat", "eval loss", "eval NLL", "train runtime"):
        assert f"<th>{header}</th>" in summary
    rows = _rows(summary)
    assert [r[0] for r in rows] == [f"{t} (out-{t})" for t in LOSS_TYPES]
    assert all(r[3] == "4" for r in rows)  # steps
    eval_loss = _column(summary, "eval loss")
    assert rows[2][eval_loss] != "—" and rows[0][eval_loss] == "—"  # only the cadft run evaluated
    assert 'id="run-3"' in text


def test_text_is_escaped(three_run_report):
    text = three_run_report.read_text()
    assert "<title>3 &lt;runs&gt; &amp; co</title>" in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quoted&#x27;" in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert "<script" not in text and "<img src=x" not in text


def test_sample_tables(run_dirs, tmp_path):
    text = render_report([load_run(run_dirs["cadft"])], top_k=3)
    assert "lowest weight at stage end" in text
    lowest = _rows(_section(text, "Most down-weighted"))
    assert [r[1] for r in lowest] == ["2", "1", "3"]  # end weights 0.2, 0.25, 0.4; top 3 of 5
    assert lowest[0][2:6] == ["wrong", "0.6", "0.2", "0.2"]
    by_kind = {r[0]: r for r in _rows(_section(text, "By kind of demonstration"))}
    assert by_kind["wrong"] == ["wrong", "2", "0.25", "0.325", "0.75", "0.3"]
    assert set(by_kind) == {"foreign", "plain", "wrong"}

    # no end stage: ranked by the start weights
    run_dir = tmp_path / "start-only"
    run_dir.mkdir()
    shutil.copy(run_dirs["nll"] / "trainer_state.json", run_dir)
    _write_jsonl(run_dir / "sample_scores.jsonl", [{k: v for k, v in r.items() if k != "kind"}
                                                    for r in _sample_rows(stages=("start",))])
    text = render_report([load_run(run_dir)], top_k=2)
    assert "lowest weight at stage start" in text
    assert [r[1] for r in _rows(_section(text, "Most down-weighted"))] == ["1", "2"]
    assert "By kind" not in text


def test_rewrite_tables_from_rewrites_jsonl(run_dirs):
    run = load_run(run_dirs["cadft"])
    rounds = rewrite_rounds(run)
    assert [(r["round"], r["step"], r["attempted"], r["accepted"]) for r in rounds] == [(1, 2, 2, 1), (2, 4, 1, 1)]
    assert rounds[0]["mean_gain"] == pytest.approx(0.2)
    text = render_report([run])
    table = _section(text, "<h4>Rewriting rounds")
    assert _rows(table)[0][-1] == "accepted: 1, rejected_no_gain: 1, rejected_verifier: 2"
    accepted = _rows(_section(text, "<h4>Accepted rewrites"))
    assert [r[0] for r in accepted] == ["1", "3"]  # the rejected attempt is not listed
    assert accepted[0][3:6] == ["0.1", "0.3", "0.2"]
    assert "2 of 3 attempts accepted" in text
    assert "first 1 shown" in render_report([run], max_rewrites=1)


def test_rewrite_metrics_from_log_history(run_dirs, tmp_path):
    run_dir = tmp_path / "rewritten"
    shutil.copytree(run_dirs["dft"], run_dir)
    state = json.loads((run_dir / "trainer_state.json").read_text())
    for step, accepted in ((2, 3), (4, 1)):
        state["log_history"].append({
            "step": step, "rewrite/selected": 4, "rewrite/attempted": 4, "rewrite/accepted": accepted,
            "rewrite/rejected_verifier": 4 - accepted, "rewrite/rejected_no_gain": 0, "rewrite/rejected_error": 0,
            "rewrite/mean_gain": 0.1 * accepted,
        })
    (run_dir / "trainer_state.json").write_text(json.dumps(state))
    run = load_run(run_dir)
    assert [(r["step"], r["accepted"], r["rejected_verifier"]) for r in rewrite_rounds(run)] == [(2, 3, 1), (4, 1, 3)]
    figs = figures([run])
    assert figs["rewrite_outcomes"] is not None and figs["rewrite_progress"] is not None
    text = render_report([run])
    headers = re.findall(r"<th>(.*?)</th>", _section(text, "<h4>Rewriting rounds"))
    assert headers == ["round", "step", "selected", "attempted", "accepted", "rejected verifier",
                       "rejected no gain", "rejected error", "mean gain"]
    assert "rewrites accepted" in _section(text, 'id="summary"')
    assert "rewrites.jsonl is not in this run directory" in text


def test_missing_metrics_say_no_data(tmp_path):
    run_dir = tmp_path / "sparse"
    run_dir.mkdir()
    history = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": float("nan")}, {"step": 2, "train_runtime": 75.0}]
    (run_dir / "trainer_state.json").write_text(json.dumps({"global_step": 2, "log_history": history}))
    run = load_run(run_dir)
    assert run.label == "sparse" and run.last("loss") == 2.0 and run.series("loss") == ([1.0], [2.0])
    figs = figures([run])
    assert figs["loss"] is not None
    assert all(figs[k] is None for k in ("compatibility", "weights", "rewrite_outcomes", "rewrite_progress"))
    text = render_report([run])
    assert "No data: no run logged cadft/compat_* metrics." in text
    assert "No data: sample_scores.jsonl is not in this run directory." in text
    assert "No data: cadft_run.json is not in this run directory." in text
    assert _rows(_section(text, 'id="summary"'))[0][4:] == ["2", "—", "—", "1 min 15 s"]

    (run_dir / "trainer_state.json").write_text(json.dumps({"log_history": []}))
    assert "No data: no run logged loss or nll." in render_report([load_run(run_dir)])


def test_newest_checkpoint_state_when_top_level_is_missing(run_dirs, tmp_path):
    run_dir = tmp_path / "crashed"
    state = json.loads((run_dirs["dft"] / "trainer_state.json").read_text())
    for step in (2, 10):  # 10 is newer than 2, though it sorts first as text
        (run_dir / f"checkpoint-{step}").mkdir(parents=True)
        (run_dir / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({**state, "global_step": step}))
    (run_dir / "checkpoint-99").mkdir()  # no trainer_state.json: not a usable checkpoint
    run = load_run(run_dir)
    assert run.state_file == run_dir / "checkpoint-10" / "trainer_state.json"
    assert run.state["global_step"] == 10
    assert "checkpoint-10/trainer_state.json" in render_report([run])


def test_bad_paths_and_files_raise_clear_errors(run_dirs, tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    with pytest.raises(ReportError, match=re.escape(str(missing)) + ": run directory not found"):
        load_run(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match=re.escape(str(empty)) + r": no trainer_state\.json"):
        load_run(empty)
    with pytest.raises(ReportError, match="not a directory"):
        load_run(run_dirs["nll"] / "trainer_state.json")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "trainer_state.json").write_text("{not json")
    with pytest.raises(ReportError, match=re.escape(str(broken / "trainer_state.json")) + ": not valid JSON"):
        load_run(broken)

    (broken / "trainer_state.json").write_text(json.dumps({"log_history": []}))
    (broken / "rewrites.jsonl").write_text('{"sample_id": 1}\n{"sample_id": 2, "rou')  # cut off mid-write
    assert len(load_run(broken).rewrites) == 1
    (broken / "rewrites.jsonl").write_text('{"sample_id": 1}\nnot json\n{"sample_id": 3}\n')
    with pytest.raises(ReportError, match=r"rewrites\.jsonl:2: not valid JSON"):
        load_run(broken)

    out = tmp_path / "never.html"
    assert report_main([str(run_dirs["nll"]), str(missing), "--output", str(out)]) == 1
    assert f"cadft report: error: {missing}: run directory not found" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(run_dirs["nll"]), "--top-k", "0"])
    assert exit_info.value.code == 2


# ---- in a browser -----------------------------------------------------------------------

# Records every load error, CSP violation and console.error, then, on load, the images
_PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    errors.push(t && t.tagName ? "failed to load <" + t.tagName.toLowerCase() + ">" : "error: " + e.message);
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) { errors.push("CSP blocked " + e.blockedURI); });
  var consoleError = console.error;
  console.error = function () {
    errors.push("console.error: " + [].join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var images = [].slice.call(document.images);
    var out = document.createElement("pre");
    out.id = "probe-result";
    out.textContent = JSON.stringify({
      errors: errors,
      images: images.length,
      broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                    .map(function (i) { return i.id || i.alt; }),
      width: document.documentElement.scrollWidth
    });
    document.body.appendChild(out);
  });
})();
</script>"""
_CONTROL = '<img id="control" alt="control" src="data:image/png;base64,AAAA">'  # must be reported broken


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(
    _chromium() is None, reason="no Chromium binary on PATH (install the Debian package: apt-get install -y chromium)"
)
def test_report_renders_in_headless_chromium(three_run_report, tmp_path):
    browser = _chromium()
    text = three_run_report.read_text()
    csp = "default-src 'none';"
    assert csp in text
    # The page's policy forbids scripts; the probed copy allows inline ones and nothing else
    probed = text.replace(csp, csp + " script-src 'unsafe-inline';", 1)
    probed = probed.replace("</title>", "</title>" + _PROBE, 1).replace("</main>", _CONTROL + "</main>", 1)
    page = tmp_path / "probed.html"
    page.write_text(probed)
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-default-browser-check", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', result.stdout, re.S)
    assert found, f"no probe result (exit {result.returncode}); stderr:\n{result.stderr[-2000:]}"
    probe = json.loads(html.unescape(found.group(1)))
    assert probe["images"] == 8  # 7 figures + the control
    assert probe["broken"] == ["control"], probe  # the check catches a broken image, and only that one
    assert probe["errors"] == ["failed to load <img>"], probe  # the control's, and nothing else
    assert probe["width"] <= 1280  # no horizontal overflow at a desktop width


def test_asft_and_eaft_metrics_reach_the_token_loss_figure(tmp_path):
    """Runs of loss_type 'asft' and 'eaft' log their own metrics (ASFT's KL to the reference,
    EAFT's gate and entropy), in training and evaluation; the report draws them, one panel
    each, and a run without them leaves the figure out."""
    for loss_type in ("asft", "eaft"):
        _train(tmp_path / loss_type, loss_type, with_eval=True)
    runs = [load_run(tmp_path / name) for name in ("asft", "eaft")]
    assert runs[0].series("asft/kl")[0] and runs[0].series("eval_asft/kl")[0]
    assert runs[1].series("eaft/gate")[0] and runs[1].series("eval_eaft/entropy")[0]
    figs = figures(runs)
    assert [len(ax.get_lines()) for ax in figs["token_loss"].axes] == [2, 2, 2]  # train and eval of one run each
    page = render_report(runs)
    assert "<h3>Token loss</h3>" in page and "no run logged asft/kl" not in page
    assert figures([runs[0]])["token_loss"] is not None
    _train(tmp_path / "dft", "dft")
    assert figures([load_run(tmp_path / "dft")])["token_loss"] is None
