"""Great Expectations data checks for the image sets the augmentation pipeline produces.

Each image becomes one row of summary columns (label, shape, dtype, finiteness, pixel
range, content digest) so that GX's column expectations can validate the whole set;
per-class counts are validated on a second, one-row-per-class table. GX is imported
lazily because importing it takes seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_source: Any = None  # GX pandas data source of the process-wide ephemeral context
_lock = threading.Lock()
_call_ids = itertools.count()


class DataCheckError(RuntimeError):
    """Raised when a suite fails; ``str(err)`` lists every failed expectation."""

    def __init__(self, message: str, failures: list[dict]) -> None:
        super().__init__(message)
        self.failures = failures

    def __reduce__(self):  # picklable: grid workers send it back to the flow process
        return type(self), (self.args[0], self.failures)


@dataclass(frozen=True)
class CheckReport:
    """Outcome of one ``check_image_set`` call; ``results`` holds one dict per expectation, ``validations`` GX's
    own validation result per table (what Data Docs render; without GX's timestamps, so the bytes repeat)."""

    name: str
    success: bool
    results: list[dict]
    validations: list[dict] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def raise_if_failed(self) -> None:
        """Raise DataCheckError listing every failed expectation (no-op on success)."""
        if not self.success:
            failures = [{"set": self.name, **r} for r in self.results if not r["success"]]
            raise DataCheckError(_format_failures(self.name, failures, len(self.results)), failures)


def check_image_set(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    image_shape: tuple[int, int, int],
    required_per_class: Sequence[int] | None = None,
    forbidden: np.ndarray | None = None,
    max_duplicate_fraction: float = 0.05,
    raise_on_failure: bool = True,
) -> CheckReport:
    """Validate an image set (n, C, H, W) float32 in [0, 1] with int labels in 0..num_classes-1.

    The duplicate fraction is (n - number of distinct samples) / n: the share of samples that
    repeat an earlier one byte for byte (samples and ``forbidden`` are compared as float32
    bytes, so a copy is caught whatever its dtype or memory layout). An empty set fails unless ``required_per_class`` is
    given and all zeros (the pipeline legitimately accepts nothing when no class is short).
    Data problems, including a wrong ndim or an image/label count mismatch, are reported as
    failed expectations; only inconsistent arguments raise ValueError. Observed values list at
    most 20 offending samples or classes (GX's SUMMARY result format).
    """
    if required_per_class is not None and len(required_per_class) != num_classes:
        raise ValueError(f"required_per_class has {len(required_per_class)} entries, expected {num_classes}")
    images = np.atleast_1d(np.asarray(images))
    labels = np.asarray(labels).reshape(-1)
    samples = _sample_table(images, labels)
    n = len(samples)
    shape = "x".join(map(str, image_shape))
    allowed_duplicates = math.floor(max_duplicate_fraction * n + 1e-9)  # 1e-9: 0.29 * 100 is 28.999...
    min_rows = 0 if required_per_class is not None and not any(required_per_class) else 1

    _datasource()  # configures GX before its first import
    import great_expectations.expectations as gxe

    sample_checks = [
        (gxe.ExpectTableRowCountToBeBetween(min_value=min_rows), f"at least {min_rows} sample(s)"),
        (gxe.ExpectColumnValuesToNotBeNull(column="digest"), "an image for every label"),
        (gxe.ExpectColumnValuesToNotBeNull(column="label"), "a label for every image"),
        (gxe.ExpectColumnValuesToBeInSet(column="shape", value_set=[shape]), f"shape {shape}"),
        (gxe.ExpectColumnValuesToBeInSet(column="dtype", value_set=["float32"]), "dtype float32"),
        (gxe.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]), "no NaN/inf pixels"),
        (gxe.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0), "pixel_min >= 0"),
        (gxe.ExpectColumnValuesToBeBetween(column="pixel_max", max_value=1), "pixel_max <= 1"),
        (
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(num_classes))),
            f"labels in 0..{num_classes - 1}",
        ),
        (
            gxe.ExpectColumnUniqueValueCountToBeBetween(column="digest", min_value=n - allowed_duplicates),
            f">= {n - allowed_duplicates} distinct samples (duplicate fraction <= {max_duplicate_fraction})",
        ),
    ]
    banned: list[str] | None = None
    if forbidden is not None:
        forbidden = np.asarray(forbidden)
        banned = sorted({_digest(row) for row in forbidden.reshape(len(forbidden), math.prod(forbidden.shape[1:]))})
        # Only banned digests present in the set can match, so the intersection gives the same
        # verdict; GX 1.24 re-serialises an expectation's value_set >100 times per validation,
        # which costs ~3 s for 10,000 test images.
        sample_checks.append(
            (
                gxe.ExpectColumnValuesToNotBeInSet(column="digest", value_set=sorted(set(banned) & set(samples["digest"]))),
                f"no sample identical to any of {len(forbidden)} forbidden images",
            )
        )
    validations = [_validate(name, "samples", samples, sample_checks)]
    if banned is not None:  # the stored expectation (gx/'s suite, what its checkpoint reruns) bans every forbidden image
        validations[0]["results"][-1]["expectation_config"]["kwargs"]["value_set"] = banned
    if required_per_class is not None:
        # GX has no "value count >= n" expectation, so compare count and required per class row.
        count_check = gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="count", column_B="required", or_equal=True)
        classes = _class_table(labels, required_per_class)
        validations.append(_validate(name, "classes", classes, [(count_check, "count >= required for every class")]))

    results = [_summarise(r) for v in validations for r in v["results"]]
    report = CheckReport(name=name, success=all(r["success"] for r in results), results=results, validations=validations)
    if raise_on_failure:
        report.raise_if_failed()
    return report


def _digest(sample: np.ndarray) -> str:
    """Hash the float32 C-contiguous bytes, so equal images always hash equal whatever their layout."""
    return hashlib.blake2b(np.ascontiguousarray(sample, dtype=np.float32), digest_size=16).hexdigest()


def _sample_table(images: np.ndarray, labels: np.ndarray):
    """One row per sample; Series of different lengths align, leaving nulls where an image or label is missing."""
    import pandas as pd

    n = len(images)
    flat = images.reshape(n, math.prod(images.shape[1:]))
    wide = flat.astype(np.float64, copy=False)  # any numeric dtype; `initial` covers zero-size samples
    return pd.DataFrame(
        {
            "label": pd.Series(labels),
            "shape": pd.Series(["x".join(map(str, images.shape[1:]))] * n, dtype=object),
            "dtype": pd.Series([str(images.dtype)] * n, dtype=object),
            "finite": pd.Series(np.isfinite(wide).all(axis=1)),
            # fmin/fmax skip NaN, so a NaN image still reports its out-of-range pixels.
            "pixel_min": pd.Series(np.fmin.reduce(wide, axis=1, initial=np.inf)),
            "pixel_max": pd.Series(np.fmax.reduce(wide, axis=1, initial=-np.inf)),
            "digest": pd.Series([_digest(row) for row in flat], dtype=object),
        }
    )


def _class_table(labels: np.ndarray, required_per_class: Sequence[int]):
    """One row per class, indexed by class, so a failure names the short class."""
    import pandas as pd

    classes = pd.RangeIndex(len(required_per_class), name="label")
    counts = pd.Series(labels).value_counts().reindex(classes, fill_value=0)
    return pd.DataFrame({"count": counts.astype("int64"), "required": list(required_per_class)}, index=classes)


def _datasource():
    """Create the ephemeral GX context and its pandas data source once per process (slow), quietly."""
    global _source
    with _lock:
        if _source is None:
            # Set before GX is first imported. GX 1.24 no longer ships analytics code, but its
            # docs still name this variable, so it keeps older GX versions quiet too.
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            for name in ("great_expectations", "great_expectations.data_context.types.base"):
                logging.getLogger(name).setLevel(logging.ERROR)  # GX sets the second to INFO on import
            context = gx.get_context(mode="ephemeral")
            # Without this every validation draws a tqdm "Calculating Metrics" bar on stderr.
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            _source = context.data_sources.add_pandas("qaug_checks")
        return _source


def _validate(name: str, table: str, df, checks: list) -> dict:
    """Validate ``df`` against ``checks`` (expectation, readable expectation) on a fresh, uniquely named asset;
    GX's result as JSON, its expectations in ``checks`` order, less the load time and ids that differ per call."""
    import great_expectations as gx

    datasource = _datasource()
    key = f"{name}-{table}-{next(_call_ids)}"
    for order, (expectation, expected) in enumerate(checks):
        expectation.meta = {"order": order, "expected": expected}
    suite = gx.ExpectationSuite(name=key, expectations=[e for e, _ in checks])
    with _lock:  # the shared data source's asset list is not thread-safe
        asset = datasource.add_dataframe_asset(key)
    try:
        batch = asset.add_batch_definition_whole_dataframe(key).get_batch(batch_parameters={"dataframe": df})
        outcome = batch.validate(suite)
    finally:
        with _lock:
            datasource.delete_asset(key)
    raw = outcome.to_json_dict()
    raw["results"].sort(key=lambda r: r["expectation_config"]["meta"]["order"])
    for r in raw["results"]:
        r["expectation_config"]["kwargs"].pop("batch_id", None)  # names this call's throwaway asset
    return {"table": table, "suite_name": f"{name}-{table}",
            **{k: raw[k] for k in ("success", "statistics", "results")}}


def _summarise(result: dict) -> dict:
    """Reduce a GX result to expectation, column, success, observed and expected."""
    config, raw = result["expectation_config"], result["result"]
    kwargs = config["kwargs"]
    if "observed_value" in raw:
        observed: Any = raw["observed_value"]
    elif config["type"] == "expect_column_pair_values_a_to_be_greater_than_b":
        observed = [
            {"class": row["label"], "count": row["count"], "required": row["required"],
             "short_by": row["required"] - row["count"]}
            for row in raw.get("partial_unexpected_index_list", [])
        ]
    elif "unexpected_count" in raw:
        observed = {
            "unexpected_count": raw["unexpected_count"],
            "unexpected_index": raw["partial_unexpected_index_list"],
            "unexpected_values": raw["partial_unexpected_list"],
        }
    else:  # a metric raised; GX keys its exception info by metric id
        info = result["exception_info"] or {}
        infos = [info, *(v for v in info.values() if isinstance(v, dict))]
        observed = {"errors": sorted({i["exception_message"] for i in infos if i.get("exception_message")})}
    return {
        "expectation": config["type"],
        "column": kwargs.get("column", kwargs.get("column_A")),
        "success": bool(result["success"]),
        "observed": observed,
        "expected": config["meta"]["expected"],
    }


def _format_failures(name: str, failures: list[dict], total: int) -> str:
    lines = [f"data checks failed for '{name}': {len(failures)} of {total} expectations"]
    for f in failures:
        column = f" [{f['column']}]" if f["column"] else ""
        lines.append(f"  - {f['expectation']}{column}: expected {f['expected']}; observed {_describe(f['observed'])}")
    return "\n".join(lines)


def _describe(observed: Any) -> str:
    if isinstance(observed, list):  # short classes
        return "; ".join(
            f"class {c['class']} has {c['count']}, needs {c['required']} (short by {c['short_by']})" for c in observed
        )
    if isinstance(observed, dict) and "unexpected_count" in observed:
        return (
            f"{observed['unexpected_count']} bad sample(s), e.g. at index {observed['unexpected_index'][:5]}: "
            f"{observed['unexpected_values'][:5]}"
        )
    return repr(observed)
