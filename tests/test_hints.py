"""Every recovery command qaug prints, run in the situation that prints it: a data check failing under `qaug run`, a
damaged input file, and the dataset versions `qaug datasets` lists, restored in fresh clones from today's remote."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipeline_helpers import dvc_project, project_env

AUGMENTED = "data/augmented/train.npz"


def _run(root: Path, command: str | list[str]) -> subprocess.CompletedProcess:
    """As a user runs it there: no Prefect server (plain dvc repro), this environment's qaug and dvc first on PATH."""
    return subprocess.run(command, shell=isinstance(command, str), cwd=root, env=project_env(PREFECT_API_URL=""),
                          capture_output=True, text=True, timeout=900)


def _ok(root: Path, command: str | list[str]) -> str:
    proc = _run(root, command)
    assert proc.returncode == 0, f"{command}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout


def _qaug(root: Path, *args: str) -> subprocess.CompletedProcess:
    return _run(root, [sys.executable, "-m", "cli", *args])


def _lock_md5(root: Path, path: str) -> str:
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return next(o["md5"] for s in stages.values() for o in s.get("outs", []) if o["path"] == path)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _set(root: Path, section: str, **values) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, dict]:
    """Two runs: version A made before the project had a DVC remote (its commit's config names none), then the
    remote added and version B made and pushed by `qaug run`. Returns the project and each version's md5."""
    root = dvc_project(tmp_path_factory.mktemp("hints") / "proj")
    (root / ".gitignore").write_text("/gx/\n")
    config = (root / ".dvc" / "config").read_text()
    (root / ".dvc" / "config").write_text(config.split("# Dataset versions")[0].replace("    remote = local\n", ""))
    _ok(root, "git add -A && git commit -qm 'no remote yet'")
    _ok(root, [sys.executable, "-m", "cli", "run", "--no-push"])
    _ok(root, "git add -A && git commit -qm 'version A'")
    (root / ".dvc" / "config").write_text(config)  # today's config: the default remote ../qaug-remote
    _set(root, "merge", mixing_ratio=0.0)  # reruns merge and evaluate only: a real-only training set
    _ok(root, [sys.executable, "-m", "cli", "run"])
    _ok(root, "git add -A && git commit -qm 'version B'")
    return root, {"A": _lock_md5_at(root, "HEAD~1"), "B": _lock_md5(root, AUGMENTED)}


def _lock_md5_at(root: Path, rev: str) -> str:
    stages = yaml.safe_load(_ok(root, f"git show {rev}:dvc.lock"))["stages"]
    return next(o["md5"] for s in stages.values() for o in s.get("outs", []) if o["path"] == AUGMENTED)


def _clone(root: Path, name: str) -> Path:
    clone = root.parent / name
    _ok(root.parent, ["git", "clone", "-q", str(root), str(clone)])
    return clone


def test_datasets_offers_a_command_only_for_pushed_versions_and_it_restores_them_in_a_fresh_clone(history) -> None:
    root, md5 = history
    clone = _clone(root, "clone1")
    listed = _qaug(clone, "datasets", "--json")
    assert listed.returncode == 0, listed.stderr
    versions = {v["md5"]: v for v in json.loads(listed.stdout)}
    a, b = versions[md5["A"]], versions[md5["B"]]
    assert (a["pushed"], a["restore"]) == (False, None)  # made before the remote existed, never pushed
    assert b["pushed"] and b["restore"]
    table = _qaug(clone, "datasets")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    assert any(a["rev"] in line and "not pushed" in line for line in lines)
    assert [line for line in lines if line.startswith("dvc get ")] == [b["restore"]]  # each command whole, on one line
    _ok(clone, b["restore"])
    assert _md5(clone / f"train-{b['rev']}.npz") == md5["B"]


def test_a_version_made_before_the_remote_existed_restores_once_pushed(history) -> None:
    """Its commit's .dvc/config names no remote: the printed command restores from today's."""
    root, md5 = history
    _ok(root, f"git checkout HEAD~1 -- dvc.lock && dvc push {AUGMENTED} && git checkout HEAD -- dvc.lock")
    clone = _clone(root, "clone2")
    versions = {v["md5"]: v for v in json.loads(_ok(clone, [sys.executable, "-m", "cli", "datasets", "--json"]))}
    older = versions[md5["A"]]
    assert older["pushed"] and older["rev"] == _ok(root, "git rev-parse --short=10 HEAD~1").strip()
    _ok(clone, older["restore"])
    assert _md5(clone / f"train-{older['rev']}.npz") == md5["A"] != md5["B"]


def test_the_hint_after_a_failed_data_check_restores_the_last_good_outputs(history) -> None:
    root, _ = history
    good = {p: _lock_md5(root, p) for p in ("data/generated/accepted.npz", "data/checks/accepted.json")}
    _set(root, "filter", tau=0.999, min_accepted_fraction=1.0)  # nothing passes: the accepted set's check fails
    failed = _qaug(root, "run", "--no-push")
    assert failed.returncode == 1 and "data checks failed for 'accepted'" in failed.stderr, failed.stderr
    hint = re.search(r"`(dvc checkout[^`]*)`", failed.stderr.strip().splitlines()[-1])
    assert hint, failed.stderr
    _ok(root, hint[1])
    assert {p: _md5(root / p) for p in good} == good
    assert _ok(root, "git status --porcelain -- metrics plots") == ""
    status = json.loads(_ok(root, "dvc status --json"))
    assert set(status) == {"filter"} and status["filter"] == [{"changed deps": {"params.yaml": {"filter": "modified"}}}]
    _ok(root, "git checkout -- params.yaml")


def test_both_hints_for_a_damaged_input_file_get_it_back(history) -> None:
    """The cached copy (`dvc checkout --force FILE`), or the stage that writes it run again (`dvc repro -f -s STAGE`:
    the same bytes, as every stage is seeded)."""
    root, _ = history
    for which in (0, 1):
        (root / "models/generator.pt").write_bytes(b"not a checkpoint")
        failed = _qaug(root, "stage", "generate")
        assert failed.returncode == 2, failed.stderr
        hints = re.search(r"`(dvc checkout[^`]*)` restores the cached version, `(dvc repro[^`]*)` rewrites it", failed.stderr)
        assert hints and hints[2] == "dvc repro -f -s train_generator", failed.stderr
        _ok(root, hints[1 + which])
        assert _md5(root / "models/generator.pt") == _lock_md5(root, "models/generator.pt")


def test_a_killed_runs_lock_is_not_stale(tmp_path) -> None:
    """A run killed with SIGKILL leaves its lock file (and pid) behind, but the kernel dropped the lock with it: the
    next run starts. So the refusal names the live holder and says to wait; no lock-removal command is ever due."""
    from qaug.repro import PipelineBusy, exclusive

    code = ("import sys, time\nfrom pathlib import Path\nfrom qaug.repro import exclusive\n"
            "with exclusive(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PipelineBusy, match=f"another qaug run is running in .* \\(pid {holder.pid}\\).*wait for it"):
            with exclusive(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert (tmp_path / ".dvc/tmp/qaug-run.lock").read_text() == str(holder.pid)
    with exclusive(tmp_path):
        assert (tmp_path / ".dvc/tmp/qaug-run.lock").read_text() != str(holder.pid)


def test_datasets_without_a_usable_remote_marks_every_version_not_pushed_and_says_why(tmp_path) -> None:
    """No default remote, an empty one, one DVC cannot reach: every version "not pushed", no command, the reason once."""
    lock = {"schema": "2.0", "stages": {"merge": {"cmd": "qaug stage merge", "outs": [
        {"path": AUGMENTED, "hash": "md5", "md5": "0123456789abcdef0123456789abcdef", "size": 10}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    _ok(tmp_path, "git init -q && python -m dvc init -q && git add -A && git commit -qm v1")
    for setup, why in (("true", "names no default remote"), ("python -m dvc remote add -d empty ../empty", None),
                       ("python -m dvc remote add -f -d far ssh://nohost.invalid/remote", "the default DVC remote could not be asked")):
        _ok(tmp_path, setup)
        shown = _qaug(tmp_path, "datasets")
        assert shown.returncode == 0, shown.stderr
        assert "not pushed" in shown.stdout and "dvc get" not in shown.stdout
        if why:
            assert why in " ".join(shown.stdout.split()), shown.stdout  # the reason, wrapped at 100 columns
        else:  # reachable and empty: nothing to explain
            assert "no version counts as pushed" not in shown.stdout
        assert max(map(len, shown.stdout.splitlines())) <= 100
