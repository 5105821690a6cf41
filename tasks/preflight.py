"""Pre-flight: everything a run needs that params.yaml's types cannot show, checked before any stage runs.

``dvc repro`` deletes a stage's outputs before running it, so an input problem found inside a
stage costs the previous outputs (``dvc checkout --force`` brings them back). ``qaug run``, the Prefect
flows and ``qaug grid`` call :func:`check` first (after ``qaug.params.read_mapping`` has read params.yaml:
UTF-8, no key twice): it parses every stage's params, loads the data source (folder, class folders and
every image readable, 8-bit, at least 8×8, under Pillow's decompression-bomb limit, without transparency:
``qaug.images``; the torchvision root; a MedMNIST file's MD5, format and splits: ``qaug.medmnist``; a ground-truth
CSV's rows and their images: ``qaug.ground_truth``; the requested classes, at least two, each with images enough
for train + val + test) and builds the quantum backend (the fake device exists; ``ibm:`` has an
account the service accepts and the device is there).
"""

from __future__ import annotations

from pathlib import Path

from qaug.params import section
from qaug.repro import stale_stages
from qmodels.backends import BackendError, connect, redact
from tasks.ingest import load_source, parse as parse_ingest
from tasks.quantum import QuantumParams
from tasks.stages import check_params

def check(raw: dict, root: Path = Path("."), data: bool = True, backend: bool = True) -> None:
    """Raise ParamsError / InputError / BackendError / FileNotFoundError naming the problem; return when a run
    with params ``raw`` whose stages run in folder ``root`` (relative data paths start there) can start."""
    check_params(raw)
    if data:
        check_data(raw, root)
    if backend:
        check_backend(section(QuantumParams, raw, "quantum"))


def before_repro(raw: dict, root: Path = Path("."), force: bool = False) -> None:
    """:func:`check` for what ``dvc repro`` will run: the data source only when ingest will run, the backend only
    when some stage will. (ingest depends on ``${ingest.root}``: a clone that pulled the prepared splits but lacks
    the raw data sees ingest as changed, and is asked for the data.)"""
    stale = None if force else stale_stages(root)
    ingest = stale is None or "ingest" in stale
    check(raw, root, data=ingest, backend=stale is None or bool(stale))
    data_root = parse_ingest(raw)[0].under(root).root
    if ingest and not Path(data_root).exists():  # the other sources said so already; the embedded set reads nothing there
        raise FileNotFoundError(f"ingest.root {data_root} does not exist: dvc.yaml's ingest stage depends on that folder "
                                f"(its content is part of what DVC compares), even for the embedded set; create it (mkdir -p {data_root})")


def check_data(raw: dict, root: Path = Path(".")) -> None:
    load_source(parse_ingest(raw)[0].under(root))


def check_backend(params: QuantumParams) -> None:
    """Connect to the backend the quantum stages will use (nothing is submitted)."""
    spec = params.spec
    if spec.kind in ("exact", "aer", "fake"):
        return  # fake device names are checked with the params; these need no account
    try:
        runtime = connect(spec, params.seed_simulator, "job")
    except BackendError:
        raise  # no account: its message says what to set
    except Exception as err:  # e.g. the account has no such device
        raise BackendError(f"params.yaml: quantum.backend {params.backend!r}: {type(err).__name__}: {redact(str(err))}") from None
    if runtime is not None:
        runtime.close()
