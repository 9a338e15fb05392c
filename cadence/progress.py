"""One progress bar for every long loop (training, collection, comparison): rich, with an ETA."""

from __future__ import annotations

import contextlib
import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class _Bar:
    def __init__(self, progress: Progress, task):
        self._p, self._t, self._fields = progress, task, {}

    def update(self, n: int = 1) -> None:
        self._p.advance(self._t, n)

    def set_postfix(self, **fields) -> None:
        self._fields.update(fields)
        self._p.update(self._t, postfix=" ".join(f"{k}={v}" for k, v in self._fields.items()))


@contextlib.contextmanager
def progress_bar(total: int, description: str, initial: int = 0, disable: bool = False):
    """A context manager yielding a bar with ``update(n)`` and ``set_postfix(**fields)``.

    Redraws live on a terminal; in logs (not a TTY) it prints nothing but the final state. ``disable``
    hides it (the ranks > 0 of a distributed run).
    """
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[postfix]}"))  # fmt: skip
    with Progress(*columns, disable=disable or not sys.stderr.isatty(), transient=False) as progress:
        task = progress.add_task(description, total=total, completed=initial, postfix="")
        yield _Bar(progress, task)
