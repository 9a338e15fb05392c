"""The benchmarks' writer of ``docs/benchmarks.md`` sections: a rewritten section replaces only itself, keeps a blank
line before the next heading, and carries over the subsections a run did not measure when told to."""

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
spec = importlib.util.spec_from_file_location("bench_report", BENCHMARKS / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)

OLD = ("# Benchmarks\n\n## Latency\n\nold run\n\n### 1 thread\n\nold table\n\n### Stability\n\nstable rows\n\n"
       "## Scan\n\nscan rows\n")


def test_a_section_is_replaced_and_the_unmeasured_subsections_it_names_are_kept(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(OLD)
    report.write_section(path, "## Latency", "## Latency\n\nnew run\n\n### 1 thread\n\nnew table\n", keep=("### Stab",))
    assert path.read_text() == ("# Benchmarks\n\n## Latency\n\nnew run\n\n### 1 thread\n\nnew table\n\n### Stability\n\n"
                                "stable rows\n\n## Scan\n\nscan rows\n")  # fmt: skip
    report.write_section(path, "## Latency", "## Latency\n\nthird\n\n### Stability\n\nnew rows\n", keep=("### Stab",))
    assert "stable rows" not in path.read_text() and "### Stability\n\nnew rows\n\n## Scan" in path.read_text()
    report.write_section(path, "## Latency", "## Latency\n\nfourth\n")  # nothing kept unless named
    assert path.read_text() == "# Benchmarks\n\n## Latency\n\nfourth\n\n## Scan\n\nscan rows\n"
    report.write_section(path, "## Scan", "## Scan\n\nlast section\n", keep=("### None",))
    assert path.read_text().endswith("## Scan\n\nlast section\n")
