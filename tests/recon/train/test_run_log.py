"""``log.jsonl``: records append one per line, and a resume cuts the log back to its state's step,
dropping lines a kill cut short."""

from __future__ import annotations

import json

from recon.train.run_log import append_log, read_log, truncate_log


def test_append_makes_the_folder_and_read_returns_records_in_order(tmp_path):
    path = tmp_path / "run" / "log.jsonl"
    for s in (1, 2):
        append_log(path, {"step": s, "loss": 0.5 / s})
    assert read_log(path) == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]


def test_truncate_drops_later_steps_and_cut_lines_only_when_needed(tmp_path):
    path = tmp_path / "log.jsonl"
    truncate_log(path, 3)  # no log yet: nothing to do
    assert not path.exists()
    lines = [json.dumps({"step": s}) for s in (1, 2, 3)]
    path.write_text("\n".join(lines) + "\n")
    before = path.stat().st_mtime_ns
    truncate_log(path, 3)
    assert path.stat().st_mtime_ns == before  # nothing dropped: the file is left alone
    path.write_text("\n".join(lines + [json.dumps({"step": 4}), '{"step": 5, "lo']) + "\n")
    truncate_log(path, 2)
    assert read_log(path) == [{"step": 1}, {"step": 2}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]  # no temporary file left
