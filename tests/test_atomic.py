"""Atomic writes: concurrent writers of one file each leave a whole file, a failed write leaves the old one."""

import threading

import pytest

from cadence.atomic import atomic_path, write_text


def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    """Two writers of the same path (two comparison runs sharing ``out=``) must not rename each other's temporary
    file away: with a shared temporary name one of them fails with FileNotFoundError, as the memory grid did."""
    path, errors = tmp_path / "results.md", []
    texts = {name: name * 20_000 for name in "ab"}

    def write(name):
        try:
            for _ in range(200):
                write_text(path, texts[name])
        except Exception as e:  # noqa: BLE001 - collected and reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(name,)) for name in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert path.read_text() in texts.values()
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]  # no temporary file left behind


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_text(tmp_path / "figure.png", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == path.parent  # the suffix picks a writer's format
        tmp.write_text("half")
        raise RuntimeError("writer crashed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_missing_folder_is_created(tmp_path):
    assert write_text(tmp_path / "a" / "b.json", "{}").read_text() == "{}"
