"""The per-problem results file of a suite run: written as problems finish, read back to resume.

    results, done = ResultsFile.open("cadft-eval/suite_results.jsonl", settings)
    results.append({"benchmark": "aime24", "id": "60", ...})    # flushed and fsynced

Line 1 is a header, `{"format": ..., "settings": {...}}`: everything that decides the
results (model, data, sampling, batch size, seed, ...). Each further line is one
finished problem. Opening an existing file checks that its settings are the ones given
(else `ResumeError`, listing what differs) and returns the problems already done; a run
killed in the middle of a write leaves a cut last line, which is dropped (and cut off the
file) so that the problem is done again. Any other unreadable line is an error naming
the file and line.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

__all__ = ["FORMAT", "ResultsFile", "ResumeError"]

logger = logging.getLogger(__name__)

FORMAT = "cadft-eval-suite/1"


class ResumeError(ValueError):
    """An existing results file that this run cannot continue."""


def _flat(settings: dict, prefix: str = "") -> dict:
    """{"sampling.num_samples": 16, ...}: nested settings as dotted keys."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _differences(old: dict, new: dict) -> list[str]:
    old, new = _flat(old), _flat(new)
    return [f"{key}: {old.get(key)!r} in the file, {new.get(key)!r} now" for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)]


class ResultsFile:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def open(cls, path: str | Path, settings: dict) -> tuple[ResultsFile, dict[tuple[str, str], dict]]:
        """The file (created with its header if missing) and {(benchmark, id): record} of the
        problems it already holds. `settings` must be JSON-serialisable."""
        path = Path(path)
        settings = json.loads(json.dumps(settings))  # compared as they read back
        if not path.exists() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            results = cls(path)
            results._write(json.dumps({"format": FORMAT, "settings": settings}, ensure_ascii=False) + "\n", "w")
            return results, {}
        return cls(path), cls._read(path, settings)

    @staticmethod
    def _read(path: Path, settings: dict) -> dict[tuple[str, str], dict]:
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1  # bytes up to the end of the last whole line
        if complete < len(data):
            logger.warning("%s: dropping the cut last line (the run was killed while writing it); "
                           "that problem is evaluated again", path)
            with open(path, "r+b") as f:
                f.truncate(complete)
                os.fsync(f.fileno())
        lines = data[:complete].decode("utf-8").split("\n")[:-1]
        if not lines:
            raise ResumeError(f"{path}: has no header line; delete it or choose another --output_dir")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError as e:
            raise ResumeError(f"{path}: line 1: not a results header ({e.msg})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ResumeError(f"{path}: line 1: not a {FORMAT} results header; choose another --output_dir")
        differences = _differences(header.get("settings") or {}, settings)
        if differences:
            raise ResumeError(
                f"{path} holds a run with other settings ({'; '.join(differences)}). Rerun with the same "
                "arguments to continue it, or choose another --output_dir"
            )
        done = {}
        for number, line in enumerate(lines[1:], start=2):
            try:
                record = json.loads(line)
                key = (record["benchmark"], record["id"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ResumeError(f"{path}: line {number}: not a result record ({e}); the file is damaged") from None
            done[key] = record
        return done

    def _write(self, text: str, mode: str = "a") -> None:
        with open(self.path, mode, encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def append(self, record: dict) -> None:
        """Add one finished problem, on disk before this returns."""
        self._write(json.dumps(record, ensure_ascii=False) + "\n")
