"""Content digests of data files, for cache keys (the grid store's ingest runs).

A key that names a data folder by its path goes stale the moment a user re-exports,
cleans or relabels the images; a key must hold their content. Hashing every image
each time a grid is planned would make large folders slow, so a file's SHA-256 is
kept in a small SQLite cache and reused while its size, modification time, inode,
device and change time stay the same (DVC's state database compares the first three;
the change time, which no tool sets, catches a copy that kept another file's times).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing, nullcontext
from pathlib import Path


def cache_path() -> Path:
    """``$QAUG_CACHE_DIR/file-hashes-v2.sqlite`` (default: ``$XDG_CACHE_HOME/qaug``, else ``~/.cache/qaug``)."""
    base = os.environ.get("QAUG_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qaug"
    return Path(base) / "file-hashes-v2.sqlite"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open_cache() -> sqlite3.Connection | None:
    """The cache, or None where it cannot be opened (a read-only home, a damaged file): then every file is hashed."""
    path = cache_path()
    db = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, stat TEXT, sha256 TEXT)")
        return db
    except (OSError, sqlite3.Error):
        if db is not None:
            db.close()
        return None


def _stat(path: Path) -> str:
    """What must be unchanged for a cached hash to hold: size, mtime, inode and device, and the ctime, which no tool
    sets (``cp -p``, ``rsync -a`` or an archive restore can give another file the same size, mtime and a reused inode)."""
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_dev} {st.st_ctime_ns}"


def _cached(db: sqlite3.Connection | None, key: str, stat: str) -> str | None:
    if db is None:
        return None
    try:
        row = db.execute("SELECT stat, sha256 FROM files WHERE path = ?", (key,)).fetchone()
    except sqlite3.Error:  # busy or damaged: hashing again costs time, never a wrong key
        return None
    return row[1] if row is not None and row[0] == stat else None


def file_hashes(paths: Iterable[Path]) -> dict[Path, str]:
    """SHA-256 of each file, from the cache where the file's :func:`_stat` is unchanged."""
    paths = [Path(p) for p in paths]
    db = _open_cache()
    result: dict[Path, str] = {}
    fresh: list[tuple] = []
    with closing(db) if db is not None else nullcontext():
        for path in paths:
            key, stat = str(path.resolve()), _stat(path)
            cached = _cached(db, key, stat)
            result[path] = cached or _sha256(path)
            if cached is None:
                fresh.append((key, stat, result[path]))
        if db is not None and fresh:
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?)", fresh)
            except sqlite3.Error:
                pass  # a busy or read-only cache costs time next run, never a wrong key
    return result


def tree_digest(root: Path, paths: Iterable[Path]) -> str:
    """One digest of files under ``root``: their paths relative to it (a file moved to another class folder is a
    relabelled image) and their contents, in sorted order."""
    root = Path(root)
    hashes = file_hashes(paths)
    h = hashlib.sha256()
    for rel, sha in sorted((p.relative_to(root).as_posix(), s) for p, s in hashes.items()):
        h.update(f"{rel}\0{sha}\n".encode())
    return h.hexdigest()

