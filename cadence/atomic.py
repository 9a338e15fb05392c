"""Atomic file writes: a reader sees a file's old content or its new one, never half of it.

Each writer writes into a temporary file of its own beside the target (same folder, so the final ``os.replace`` is
one atomic rename; same suffix, so writers that pick a format from the name still do), then renames it over the
target. Two processes writing the same file at once — two comparison runs sharing an ``out=`` folder, say — each
finish with a whole file; the last rename wins.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a fresh temporary path beside ``path``; when the block ends without error, it replaces ``path``.

    The folder is created if missing; on an error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
