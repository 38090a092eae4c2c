"""``recon eval``: one-line errors with exit code 2, a real run with JSON, grid and summary."""

from __future__ import annotations

import json

import pytest

from recon.cli import build_parser, main
from recon.core.errors import ReconError
from recon.eval.command import EarlierResultError, EvalRequest, read_earlier, run_eval


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "nope"], "unknown protocol 'nope'; known protocols: lego-sparse-4"),
        (["eval", "lego-sparse-4", "--method", "nope"], "unknown method 'nope'; known methods: recon, recon-unposed, optimize-30s"),
        (["eval", "fox-sparse", "--data", "/nonexistent/eval_data"], "data folder /nonexistent/eval_data/fox_instantngp not found"),
        (["eval", "fox-sparse", "--limit", "0"], "--limit must be at least 1"),
        (["eval"], "the following arguments are required: PROTOCOL"),
        (["eval", "synthetic-val", "--resume"], "--resume needs --json"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    rc, out, err = _run(argv, capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_eval_lego_alias_writes_json_grid_and_summary(eval_data, tmp_path, capsys):
    """``lego-sparse`` runs both lego protocols; each writes its own JSON and grid (name suffixed)."""
    rc, out, err = _run(["eval", "lego-sparse", "--method", "mean-color", "--data", eval_data, "--limit", "1",
                         "--json", tmp_path / "lego.json", "--grid", tmp_path / "lego.png", "--device", "cpu"], capsys)
    assert rc == 0, err
    header, _rule, *rows = out.strip().splitlines()
    assert header.split()[:5] == ["protocol", "method", "items", "psnr", "ssim"] and len(rows) == 2
    for name, row in zip(["lego-sparse-4", "lego-sparse-8"], rows):
        result = json.loads((tmp_path / f"lego-{name}.json").read_text())
        assert result["protocol"]["name"] == name and result["method"]["name"] == "mean-color"
        # lego has one item, so --limit 1 is the full protocol (no override recorded)
        assert result["overrides"]["limit"] is None and result["full_protocol"] is True
        assert (tmp_path / f"lego-{name}.png").is_file() and row.split()[:2] == [name, "mean-color"]
        assert f"{result['means']['psnr']:.2f}" in row
    assert len(err.strip().splitlines()) == 2  # one progress line per item


def test_resume_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc, out, err = _run(["eval", "synthetic-val", "--resume", "--json", bad], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and f"--resume: cannot read {bad}" in err, err
    assert bad.read_text() == "{not json"  # nothing lost
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"format": "recon-eval/1", "protocol": {"name": "lego-sparse-4"}, "items": []}))
    rc, out, err = _run(["eval", "synthetic-val", "--method", "mean-color", "--resume", "--json", earlier], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "cannot resume: the earlier result has a different protocol (lego-sparse-4)" in err, err


def test_eval_without_method_scores_the_shipped_model():
    """``recon eval PROTOCOL`` with no ``--method`` evaluates the model (the baselines are asked for by name)."""
    args = build_parser().parse_args(["eval", "lego-sparse-8"])
    assert args.method == "recon"


def test_library_errors_name_fields_not_flags(tmp_path):
    """``run_eval`` is called from Python too (bench/): its errors name ``EvalRequest`` fields; the CLI adds flags."""
    with pytest.raises(ReconError, match="resume needs json_path") as info:
        run_eval(EvalRequest("synthetic-val", method="mean-color", resume=True))
    assert "--" not in str(info.value)
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(EarlierResultError, match="is not a results file") as info:
        read_earlier(bad)
    assert "--" not in str(info.value)
