"""Opening the store: a file that cannot be one is a one-line StoreError naming it, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import StoreError
from connector.store import open_store


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(lambda folder: folder / "missing" / "state.db", "unable to open database file", id="no-folder"),
        pytest.param(lambda folder: folder, "unable to open database file", id="a-folder"),
        pytest.param(
            lambda folder: _written(folder / "state.db", b"not a database " * 400),
            "file is not a database",
            id="not-a-database",
        ),
    ],
)
def test_a_sqlite_store_that_cannot_be_opened_is_named_with_the_reason(
    tmp_path: Path, make: object, problem: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]

    with pytest.raises(StoreError) as error:
        open_store(f"sqlite:///{path}")

    assert str(error.value) == f"cannot open the state store {path}: {problem}"


def test_a_server_store_that_cannot_be_reached_never_shows_its_password() -> None:
    with pytest.raises(StoreError) as error:
        open_store("postgresql+psycopg://crmsync:s3cret-pw@127.0.0.1:1/crmsync?connect_timeout=2")

    assert "s3cret-pw" not in str(error.value)
    assert str(error.value).startswith("cannot open the state store: ")


def _written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_a_read_does_not_wait_for_a_writer_and_a_write_still_queues(tmp_path: Path) -> None:
    """Store.read takes no lock (a helper loads its chunk while the run's process commits); Store.begin still
    takes the write lock first, so two writers queue instead of failing half-way."""
    import threading

    from sqlalchemy import text

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    seen: list[int] = []
    try:
        with store.begin() as writer:
            writer.execute(text("CREATE TABLE t (n INTEGER)"))
            writer.execute(text("INSERT INTO t VALUES (1)"))

        def read() -> None:
            with store.read() as reader:
                seen.append(reader.execute(text("SELECT count(*) FROM t")).scalar_one())

        with store.begin() as writer:  # holds the write lock while the other thread reads
            writer.execute(text("INSERT INTO t VALUES (2)"))
            thread = threading.Thread(target=read)
            thread.start()
            thread.join(timeout=30)  # a read that waited for the lock would wait out the 60 s busy timeout
            assert not thread.is_alive()
        assert seen == [1]  # the snapshot before the open write
        with store.read() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    finally:
        store.close()
