"""Which errors are the input's fault, and what to tell the user about them (one line and exit 2, not a traceback)."""

from __future__ import annotations

from cli.server import ServerDown


def input_errors() -> tuple[type[Exception], ...]:
    """Errors that are the input's fault (params, data, files, backend, server, a busy project): one line, exit 2."""
    from flows.automations import AutomationError
    from qaug.checks import DataCheckError
    from qaug.io import InputError
    from qaug.params import ParamsError
    from qaug.repro import PipelineBusy
    from qmodels.backends import BackendError

    return (ParamsError, DataCheckError, InputError, BackendError, FileNotFoundError, ServerDown, PipelineBusy, AutomationError)


def rewrite_hint(err: Exception) -> str:
    """For a damaged input file: which stage writes it and how to get it back."""
    from qaug.io import InputError
    from tasks.stages import writer

    stage = writer(err.path) if isinstance(err, InputError) and err.path else None
    if stage is None:
        return ""
    in_git = err.path.parts[0] in ("metrics", "plots")  # dvc.yaml keeps them out of the DVC cache (cache: false)
    # --force: plain `dvc checkout` refuses (exit 255) to overwrite a file that differs from its cached copy
    restore = f"`git checkout -- {err.path}` restores the committed version" if in_git else f"`dvc checkout --force {err.path}` restores the cached version"
    return f"\n  {err.path} is written by stage {stage}: {restore}, `dvc repro -f -s {stage}` rewrites it"
