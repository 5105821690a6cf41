"""Great Expectations checks of generated sets, as the generate, filter and merge stages run them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from qaug.checks import check_image_set
from qaug.io import write_json
from qaug.params import require


@dataclass(frozen=True)
class ChecksParams:
    max_duplicate_fraction: float = 0.05

    def validate(self) -> None:
        require(0.0 <= self.max_duplicate_fraction <= 1.0, "max_duplicate_fraction", "must be in [0, 1]")


def verify(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    image_shape: Sequence[int],
    required_per_class: Sequence[int],
    test_images: np.ndarray,
    params: ChecksParams,
    report: Path,
    allow_duplicates: bool = False,
) -> None:
    """Run the suite and write its report; on failure raise DataCheckError (listing every failed
    expectation) before the stage writes its data. ``allow_duplicates``: the set repeats
    real images on purpose (the ``duplicates`` baseline), so the duplicate check is off."""
    result = check_image_set(
        name, images, labels,
        num_classes=num_classes,
        image_shape=tuple(int(s) for s in image_shape),  # type: ignore[arg-type]
        required_per_class=[int(r) for r in required_per_class],
        forbidden=test_images,
        max_duplicate_fraction=1.0 if allow_duplicates else params.max_duplicate_fraction,
        raise_on_failure=False,
    )
    write_json(report, result.to_dict())
    result.raise_if_failed()
