"""The benchmark runner: a partial run (--only) keeps the other modules' last results."""

from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_a_partial_run_keeps_the_other_modules_results_of_the_same_mode(tmp_path, capsys):
    out = tmp_path / "results.json"
    earlier_save = {"status": "ok", "seconds": 1.0, "result": {"p50_ms": 8.4}}
    out.write_text(json.dumps({"mode": "quick", "modules": {"save": earlier_save, "brief": {"status": "old"}}}))
    assert main(["--quick", "--only", "brief", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["modules"]["save"] == earlier_save  # kept
    assert report["modules"]["brief"]["status"] == "ok"  # replaced by this run
    assert "prompt" in report["modules"]["brief"]["result"]
    assert "save" in capsys.readouterr().out  # the table shows the kept module too


def test_a_partial_run_of_another_mode_does_not_mix_results(tmp_path):
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"mode": "full", "modules": {"save": {"status": "ok", "result": {}}}}))
    assert main(["--quick", "--only", "brief", "--out", str(out)]) == 0
    assert list(json.loads(out.read_text())["modules"]) == ["brief"]
