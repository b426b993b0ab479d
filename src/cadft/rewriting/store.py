"""Accepted rewrites and their provenance: `rewrites.jsonl` and the rewritten dataset.

Nothing is deleted. The original demonstration always stays in the dataset; an accepted
rewrite is stored beside it and becomes the training target. `rewrites.jsonl` is
append-only (each round is flushed and fsynced); when a run resumes from a checkpoint
that predates some logged rounds, those rows move to `rewrites.orphaned.jsonl`, since the
resumed run will redo them.
"""

from __future__ import annotations

import json
import os

__all__ = ["RewriteStore", "PROVENANCE_FILE", "ORPHANED_FILE", "DATASET_FILE"]

PROVENANCE_FILE = "rewrites.jsonl"
ORPHANED_FILE = "rewrites.orphaned.jsonl"
DATASET_FILE = "rewritten_dataset.jsonl"


class RewriteStore:
    def __init__(self):
        self.accepted: dict[int, dict] = {}  # sample id -> {"text", "round", "step", ...}
        self.rounds_done = 0
        self.last_round_step: int | None = None

    def add_round(self, records: list[dict], step: int) -> None:
        self.rounds_done += 1
        self.last_round_step = step
        for r in records:
            if r["accepted"]:
                self.accepted[r["sample_id"]] = {
                    "text": r["rewrite"],
                    "round": r["round"],
                    "step": r["step"],
                    "compat_before": r["compat_before"],
                    "compat_after": r["compat_after"],
                    "generator": r["generator"],
                    "verifier": r["verifier"],
                }

    # ---- files ------------------------------------------------------------------------

    @staticmethod
    def append_provenance(output_dir: str, records: list[dict]) -> None:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, PROVENANCE_FILE), "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def reconcile_provenance(self, output_dir: str) -> int:
        """After a resume: move logged rounds beyond `rounds_done` to the orphaned file.
        Returns how many rows moved."""
        path = os.path.join(output_dir, PROVENANCE_FILE)
        if not os.path.isfile(path):
            return 0
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        keep, orphaned = [], []
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash: keep it aside, never drop it
                orphaned.append(line)
                continue
            (keep if row["round"] <= self.rounds_done else orphaned).append(line)
        if not orphaned:
            return 0
        with open(os.path.join(output_dir, ORPHANED_FILE), "a", encoding="utf-8") as f:
            f.writelines(line if line.endswith("\n") else line + "\n" for line in orphaned)
            f.flush()
            os.fsync(f.fileno())
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(keep)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return len(orphaned)

    def rewritten_rows(self, rows, completion_column: str = "completion") -> list[dict]:
        """The training rows with originals and rewrites side by side: every original
        column unchanged, plus `rewritten_completion` (same format as the completion, or
        None) and `rewrite_round`."""
        out = []
        for row in rows:
            entry = self.accepted.get(row["sample_id"])
            rewritten = None
            if entry is not None:
                original = row[completion_column]
                # conversational: keep the message structure, replace the content
                rewritten = [{**original[-1], "content": entry["text"]}] if isinstance(original, list) else entry["text"]
            out.append({**row, "rewritten_completion": rewritten, "rewrite_round": entry and entry["round"]})
        return out

    def save_dataset(self, rows, output_dir: str) -> str:
        """Write `rewritten_dataset.jsonl` (loads with `datasets.load_dataset("json", ...)`)."""
        path = os.path.join(output_dir, DATASET_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for row in self.rewritten_rows(rows):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def state_dict(self) -> dict:
        return {
            "accepted": {str(k): v for k, v in self.accepted.items()},
            "rounds_done": self.rounds_done,
            "last_round_step": self.last_round_step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.accepted = {int(k): v for k, v in state["accepted"].items()}
        self.rounds_done = state["rounds_done"]
        self.last_round_step = state["last_round_step"]
