"""Prefect tasks shared by the flows: a stage through DVC (its output as the task run's log, its progress and
metrics as artifacts), a stage in this process, and the run's report."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import (create_image_artifact, create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)

from qaug.data_docs import build_from_reports
from qaug.io import read_json
from qaug.repro import ANSI, PipelineBusy, repro_stage, stage_outcome
from tasks.layout import files
from tasks.report import CHECKS, check_rows, comparison_rows, flatten, summary_markdown
from tasks.stages import NAMES, get, tags

# A qmodels.progress line as the stage process logs it, e.g. "INFO qaug.progress: GAN 120/400 steps (loss_d 0.6, …)".
PROGRESS = re.compile(r"qaug\.progress: (?P<what>.+?) (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+)")
# DVC's advice after each stage (stage the lock file, enable autostage, push): the same five lines in every
# stage's log, noise in the UI; kept at DEBUG.
DVC_ADVICE = re.compile(r"^\s*(To track the changes with git, run:|git add |To enable auto staging, run:|"
                        r"dvc config core\.autostage true|Use `dvc push` to send your updates to remote storage\.)")
# A stage's line's own level: a log record as qaug.settings.LOG_FORMAT writes it ("WARNING qaug.filter: …"), DVC's
# "ERROR: …" / "WARNING: …", a CLI's "qaug …: warning: …" or error line, a Python warning ("file.py:3: UserWarning: …").
LEVELS = ((re.compile(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)(:| [\w.]+: )"), None),
          (re.compile(r"^qaug( [a-z-]+)?: warning: "), logging.WARNING),
          (re.compile(r"^qaug [a-z-]+: "), logging.ERROR),
          (re.compile(r"^\S+:\d+: \w*Warning: "), logging.WARNING),
          (re.compile(r"^Traceback \(most recent call last\):"), logging.ERROR))


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes."""
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in ("qaug", *parts))


def line_level(line: str) -> int:
    """The level a line of a stage's output was written at (:data:`LEVELS`); INFO for anything else: its output."""
    if DVC_ADVICE.match(line):
        return logging.DEBUG
    for pattern, level in LEVELS:
        said = pattern.match(line)
        if said:
            return level if level is not None else logging.getLevelName(said["level"])
    return logging.INFO


def _busy(task, task_run, state) -> bool:
    """Retry only when another DVC command held the repository: the stage did not start. A failing stage is
    deterministic and would fail again."""
    try:
        state.result()
    except PipelineBusy:
        return True
    except Exception:
        return False
    return False


# One delay, not a list: the UI shows a task's retry delay as a number of seconds ("NaNs" for a list).
@task(task_run_name="{name}", retries=4, retry_delay_seconds=300, retry_condition_fn=_busy)
def reproduce_stage(name: str, root: str = ".", force: bool = False) -> str:
    """``dvc repro --single-item NAME``: DVC runs the stage only when something it depends on changed, so
    dvc.lock stays true. Returns "ran", "restored" (outputs from DVC's run cache) or "unchanged"."""
    logger = get_run_logger()
    progress, outcome = None, "unchanged"
    try:
        for raw_line in repro_stage(name, Path(root), force):
            line = ANSI.sub("", raw_line).rstrip()
            if not line:
                continue
            logger.log(line_level(line), line)
            said = stage_outcome(line)
            outcome = said[1] if said and said[0] == name else outcome
            step = PROGRESS.search(line)
            if step:
                progress = _show_progress(progress, name, step)
    except PipelineBusy:
        raise
    except Exception:
        if name in NAMES and set(files(get(name).paths_object(), "out")) & set(CHECKS):
            build_docs(Path(root))  # the stage failed; if its data checks did, they are what to look at
            publish_checks(Path(root), failed_only=True)
        raise
    if outcome != "unchanged" and name in NAMES:
        publish_stage(name, Path(root))
    return outcome


def _show_progress(artifact, name: str, step: re.Match):
    """Create or move the stage's progress artifact; the UI missing one update must not fail the stage."""
    share = 100.0 * int(step["done"]) / int(step["total"])
    what = f"{name}: {step['what']} {step['done']}/{step['total']} {step['unit']}"
    try:
        if artifact is None:
            return create_progress_artifact(share, key=artifact_key(name, "progress"), description=what)
        update_progress_artifact(artifact, share, description=what)
    except Exception as err:  # noqa: BLE001 - an API hiccup; the stage goes on
        get_run_logger().warning("progress artifact not updated (%s: %s)", type(err).__name__, err)
    return artifact


def rounded(value, digits: int = 4):
    """Numbers as people read them in a table (4 significant digits); other values unchanged."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    return value


def metric_rows(metrics: dict) -> list[dict]:
    """A metrics file as flat (metric, value) rows: nested keys joined with dots, long series left out."""
    rows = []
    for name, value in flatten(metrics).items():
        if not isinstance(value, list):
            rows.append({"metric": name, "value": rounded(value)})
        elif len(value) <= 12 and all(not isinstance(v, (dict, list)) for v in value):
            rows.append({"metric": name, "value": ", ".join(str(rounded(v)) for v in value)})
    return rows


def publish_stage(name: str, root: Path) -> None:
    """The stage's metrics (rounded) as table artifacts and its figures as image artifacts, on its task run;
    best effort: the stage has succeeded, an artifact the API refuses is a warning."""
    for path in files(get(name).paths_object(), "out"):
        target = root / path
        try:
            if target.is_file() and path.parts[0] == "metrics" and path.suffix == ".json":
                create_table_artifact(key=artifact_key(name, path.stem, "metrics"), table=metric_rows(read_json(target)),
                                      description=f"{name}: {path}")
            elif target.is_file() and path.suffix == ".png":
                data = base64.b64encode(target.read_bytes()).decode()
                create_image_artifact(image_url=f"data:image/png;base64,{data}", key=artifact_key(name, path.stem),
                                      description=f"{name}: {path}")
        except Exception as err:  # noqa: BLE001
            get_run_logger().warning("artifact for %s not published (%s: %s)", path, type(err).__name__, err)


@task(task_run_name="{name}")
def _run_stage(name: str, raw: dict, root: str = ".") -> dict:
    return get(name).run(raw, Path(root))


def run_stage(name: str, raw: dict, root: str = ".") -> dict:
    """One pipeline stage (``tasks.stages``) in this process as a task run tagged for concurrency limits."""
    return _run_stage.with_options(tags=tags(name, raw))(name, raw, root)


@task(task_run_name="report")
def publish_report(root: str = ".") -> None:
    """Data Docs, then a markdown summary (with the checks' verdicts and the Data Docs' address), the headline
    metrics table (rounded) and the data checks table, on the flow run's Artifacts tab."""
    build_docs(Path(root))
    create_markdown_artifact(key="qaug-summary", markdown=summary_markdown(Path(root)), description="qaug run summary")
    rows = [{k: rounded(v) for k, v in row.items()} for row in comparison_rows(Path(root))]
    create_table_artifact(key="qaug-metrics", table=rows, description="baseline vs augmented test metrics")
    publish_checks(Path(root))


def build_docs(root: Path) -> None:
    """gx/ and its Data Docs from the run's check reports; a failure is a warning (the docs are a view)."""
    try:
        build_from_reports(list(CHECKS), root)
    except Exception as err:  # noqa: BLE001
        get_run_logger().warning("Data Docs not built (%s: %s); `qaug docs` retries", type(err).__name__, err)


def publish_checks(root: Path, failed_only: bool = False) -> None:
    """Great Expectations' verdicts, one row per expectation (or per failed one), as a table artifact; best effort."""
    rows = check_rows(root, failed_only)
    try:
        if rows:
            create_table_artifact(key=artifact_key("data-checks", "failed" if failed_only else "all"), table=rows,
                                  description="failed data checks" if failed_only else "data checks (Great Expectations)")
    except Exception as err:  # noqa: BLE001 - best effort: it must not hide the stage's own error
        get_run_logger().warning("data checks artifact not published (%s: %s)", type(err).__name__, err)
