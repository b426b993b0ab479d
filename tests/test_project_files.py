"""What a new user meets first: the README's Python example and the repository's files.

Each README example runs as written in a subprocess on this CPU machine; only its model
(a hub model, which this machine cannot download, or the embedded one) becomes a tiny local
model, and a `my_data.jsonl` of a few demonstrations is written beside it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cadft.data import mixed_quality_demos
from cadft.model.tiny import save_tiny

ROOT = Path(__file__).resolve().parents[1]


def readme_python_examples() -> list[str]:
    """The ```python blocks of README.md, in order."""
    return re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)


def test_readme_python_example_runs_on_cpu(tmp_path):
    examples = readme_python_examples()
    assert examples, "README.md has no ```python example"
    hub_model = re.compile(r'model="([^"]+/[^"]+|embedded)"')  # a hub id like "org/name", or the embedded model
    for number, example in enumerate(examples, start=1):
        assert hub_model.search(example), f"example {number} changed: update this test"
        workdir = tmp_path / f"example{number}"
        workdir.mkdir()
        mixed_quality_demos(8, seed=0).to_json(str(workdir / "my_data.jsonl"), lines=True)
        tiny = save_tiny(workdir / "tiny-model")
        script = workdir / "example.py"
        script.write_text(hub_model.sub(f"model={tiny!r}", example), encoding="utf-8")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run([sys.executable, str(script)], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"README example {number} failed:\n{proc.stderr[-3000:]}"
        assert "train_loss" in proc.stdout + proc.stderr


def test_report_default_output_is_gitignored():
    from cadft.cli.report import make_parser

    default = make_parser().parse_args(["run"]).output
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert f"/{default}" in ignored or default in ignored, f"`cadft report` writes {default}; .gitignore misses it"
