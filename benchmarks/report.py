"""Shared by the benchmarks: describe the machine and replace a section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    n_cpu = len(os.sched_getaffinity(0))
    return f"{cpu}, {n_cpu} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, Python {platform.python_version()}"


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def write_section(path: Path, heading: str, section: str, keep: tuple[str, ...] = ()) -> None:
    """Replace the section starting at ``heading`` (up to the next '## ') in ``path``, atomically. ``keep``: headings
    (prefixes of '### ' lines) of subsections this run did not measure; the old section's are carried over to the end
    of the new one instead of being dropped (e.g. latency's long-run stability, measured only when asked for)."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\nLatest results; each section names its command and machine.\n"
    start = old.find(heading)
    if start < 0:
        new = old.rstrip() + "\n\n" + section
    else:
        end = old.find("\n## ", start + len(heading))
        kept = [sub for prefix in keep if prefix not in section and (sub := subsection(old[start:end if end >= 0 else None], prefix))]
        section = "\n\n".join([section.rstrip(), *kept])
        new = old[:start] + (section.rstrip() + "\n\n" + old[end + 1 :] if end >= 0 else section.rstrip() + "\n")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new)
    tmp.replace(path)


def subsection(text: str, prefix: str) -> str:
    """The subsection of ``text`` whose '### ' heading starts with ``prefix``, up to the next '### ' ('' if none)."""
    start = text.find("\n" + prefix)
    if start < 0:
        return ""
    end = text.find("\n### ", start + 1)
    return text[start + 1 : end if end >= 0 else None].rstrip()


DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


class Run:
    """One benchmark run, timed and load-recorded from its construction to :meth:`provenance`."""

    def __init__(self):
        self.load, self.t0 = os.getloadavg(), time.perf_counter()

    def provenance(self) -> str:
        """The command as typed, its commit, date and machine, and the load average at the start and now."""
        load = lambda values: " / ".join(f"{v:.1f}" for v in values)  # noqa: E731
        command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
        return (f"`{command}` at {git_commit()}, {time.strftime('%Y-%m-%d')}, on {describe_machine()}. Load average "
                f"(1/5/15 min) {load(self.load)} at the start, {load(os.getloadavg())} at the end "
                f"({time.perf_counter() - self.t0:.0f} s).")
