"""Content digests of data files, for cache keys (the grid store's ingest runs).

A key that names a data folder by its path goes stale the moment a user re-exports,
cleans or relabels the images; a key must hold their content. Hashing every image
each time a grid is planned would make large folders slow, so a file's SHA-256 is
kept in a small SQLite cache and reused while its size, modification time and inode
stay the same (what DVC's own state database compares before it re-hashes a file).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing, nullcontext
from pathlib import Path


def cache_path() -> Path:
    """``$QAUG_CACHE_DIR/file-hashes.sqlite`` (default: ``$XDG_CACHE_HOME/qaug``, else ``~/.cache/qaug``)."""
    base = os.environ.get("QAUG_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qaug"
    return Path(base) / "file-hashes.sqlite"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open_cache() -> sqlite3.Connection | None:
    """The cache, or None where it cannot be written (a read-only home): then every file is hashed."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INT, mtime_ns INT, inode INT, sha256 TEXT)")
        return db
    except (OSError, sqlite3.Error):
        return None


def file_hashes(paths: Iterable[Path]) -> dict[Path, str]:
    """SHA-256 of each file, from the cache where the file's size, mtime and inode are unchanged."""
    paths = [Path(p) for p in paths]
    db = _open_cache()
    result: dict[Path, str] = {}
    fresh: list[tuple] = []
    with closing(db) if db is not None else nullcontext():
        for path in paths:
            st = path.stat()
            key = str(path.resolve())
            row = db.execute("SELECT size, mtime_ns, inode, sha256 FROM files WHERE path = ?", (key,)).fetchone() if db else None
            if row is not None and tuple(row[:3]) == (st.st_size, st.st_mtime_ns, st.st_ino):
                result[path] = row[3]
                continue
            result[path] = _sha256(path)
            fresh.append((key, st.st_size, st.st_mtime_ns, st.st_ino, result[path]))
        if db is not None and fresh:
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", fresh)
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

