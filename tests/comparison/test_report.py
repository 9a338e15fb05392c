"""The report built from cells: its tables (robustness, success rate), figures, and the one writer of
``results.md``, ``summary.json`` and the PNGs."""

import json

from cadence.comparison import GRID_PLOTS, markdown, plot_curves, summarize, write_report

TASK = "invertedpendulum_p"
PNG = b"\x89PNG\r\n\x1a\n"


def test_report_has_robustness_table_and_curves(cells, tmp_path):
    summary = summarize(cells)
    text = markdown(summary)
    assert "| backbone | clean | delay3 | noise |" in text
    assert text.count("\n| gru |") == 2 and text.count("\n| linoss |") == 2  # aggregate and robustness rows
    assert summary["cells"][(TASK, "gru")]["curve"]["step"] == [10.0, 20.0]
    png = plot_curves(summary, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == PNG
    assert "Success rate" not in text  # InvertedPendulum defines no success


def test_report_gives_the_success_rate_of_tasks_that_define_one(cells):
    reach = [r | {"task": "memory_reacher", "success_rate": s} for r, s in zip(cells, (0.25, 0.0))]
    text = markdown(summarize([*cells, *reach]))
    success = text.split("Success rate")[1].split("\n\n")[1].splitlines()
    assert success[0] == "| task | gru | linoss |"
    assert success[2:] == ["| memory_reacher | 25% | 0% |"]  # only the task with a success signal


def test_write_report_writes_text_statistics_and_figures_and_a_copy(cells, tmp_path):
    summary = summarize(cells)
    out, copy = tmp_path / "out", tmp_path / "docs" / "report.md"
    write_report(out, "# title\n", summary, GRID_PLOTS, copy)
    assert (out / "results.md").read_text() == copy.read_text() == "# title\n"
    stats = json.loads((out / "summary.json").read_text())
    assert set(stats) == {f"{TASK}/gru", f"{TASK}/linoss"} and stats[f"{TASK}/gru"]["n"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "results.md", "scores.png", "summary.json"]
    assert sorted(p.name for p in copy.parent.iterdir()) == ["curves.png", "report.md", "scores.png"]
    assert all((folder / "scores.png").read_bytes()[:8] == PNG for folder in (out, copy.parent))
