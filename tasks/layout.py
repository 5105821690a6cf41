"""Stage paths relative to a project root.

Each stage declares its inputs (``dep``), outputs (``out``) and, for quantum
stages, its IBM job journal (``journal``, not a DVC output) as a frozen
dataclass of paths relative to the project root: the same paths ``dvc.yaml``
lists (a test keeps the two in step). ``rooted`` places them under another root,
which is how tests run stages in a temporary folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def dep(path: str) -> Any:
    return dataclasses.field(default=Path(path), metadata={"role": "dep"})


def out(path: str) -> Any:
    return dataclasses.field(default=Path(path), metadata={"role": "out"})


def journal(path: str) -> Any:
    """A file the stage keeps beside its outputs that DVC must not delete before a rerun (IBM job ids)."""
    return dataclasses.field(default=Path(path), metadata={"role": "journal"})


def rooted(paths: T, root: Path) -> T:
    """``paths`` with every field prefixed by ``root`` (unchanged when root is '.')."""
    if Path(root) == Path("."):
        return paths
    return dataclasses.replace(paths, **{f.name: Path(root) / getattr(paths, f.name) for f in dataclasses.fields(paths)})  # type: ignore[arg-type]


def files(paths: object, role: Literal["dep", "out"]) -> list[Path]:
    """A stage's input or output paths, in declaration order."""
    return [getattr(paths, f.name) for f in dataclasses.fields(paths) if f.metadata.get("role") == role]  # type: ignore[arg-type]
