import json

import numpy as np
import pytest

from qaug.checks import CheckReport, DataCheckError, check_image_set

SHAPE = (1, 28, 28)
PER_CLASS = 20


@pytest.fixture(scope="module")
def data():
    """A clean 3-class set (20 per class) and 10 held-out test images, shared by every test."""
    rng = np.random.default_rng(0)
    images = rng.random((3 * PER_CLASS, *SHAPE), dtype=np.float32)
    labels = np.repeat(np.arange(3, dtype=np.int64), PER_CLASS)
    test = rng.random((10, *SHAPE), dtype=np.float32)
    return images, labels, test


def check(images, labels, test, **kwargs) -> CheckReport:
    kwargs = {"num_classes": 3, "image_shape": SHAPE, "required_per_class": [PER_CLASS] * 3, "forbidden": test,
              **kwargs}
    return check_image_set("candidates", images, labels, **kwargs)


def test_clean_set_passes_silently(data, capfd) -> None:
    report = check(*data)
    assert report.success and all(r["success"] for r in report.results)
    assert {r["expectation"] for r in report.results} >= {
        "expect_column_values_to_be_in_set", "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_in_set", "expect_column_unique_value_count_to_be_between",
        "expect_column_pair_values_a_to_be_greater_than_b", "expect_table_row_count_to_be_between",
    }
    assert capfd.readouterr() == ("", "")  # no progress bars, no logging


def _set(images, index, value):
    images = images.copy()
    images[index] = value
    return images


def _copy_rows(images, src, dst):
    images = images.copy()
    images[dst] = images[src]
    return images


# Each case: mutate (images, labels, test) -> (images, labels); the failed expectation and column.
CASES = {
    "nan": (lambda x, y, t: (_set(x, (4, 0, 3, 3), np.nan), y), "expect_column_values_to_be_in_set", "finite"),
    "inf": (lambda x, y, t: (_set(x, (4, 0, 3, 3), np.inf), y), "expect_column_values_to_be_in_set", "finite"),
    "above_one": (lambda x, y, t: (_set(x, (5, 0, 0, 0), 1.2), y), "expect_column_values_to_be_between", "pixel_max"),
    "below_zero": (lambda x, y, t: (_set(x, (5, 0, 0, 0), -0.1), y), "expect_column_values_to_be_between", "pixel_min"),
    "unknown_label": (lambda x, y, t: (x, _set(y, 0, 3)), "expect_column_values_to_be_in_set", "label"),
    "missing_label": (lambda x, y, t: (x, y[:-1]), "expect_column_values_to_not_be_null", "label"),
    "duplicates": (
        lambda x, y, t: (_copy_rows(x, 0, slice(1, 5)), y),  # 4 repeats of 60 > 5 %
        "expect_column_unique_value_count_to_be_between", "digest",
    ),
    "test_image": (lambda x, y, t: (_set(x, 7, t[2]), y), "expect_column_values_to_not_be_in_set", "digest"),
    "wrong_ndim": (lambda x, y, t: (x[:, 0], y), "expect_column_values_to_be_in_set", "shape"),
    "wrong_size": (lambda x, y, t: (x[..., :27], y), "expect_column_values_to_be_in_set", "shape"),
    "float64": (lambda x, y, t: (x.astype(np.float64), y), "expect_column_values_to_be_in_set", "dtype"),
}


@pytest.mark.parametrize("case", CASES)
def test_suite_rejects(data, case) -> None:
    mutate, expectation, column = CASES[case]
    images, labels = mutate(*data)
    with pytest.raises(DataCheckError) as err:
        check(images, labels, data[2])
    assert f"{expectation} [{column}]" in str(err.value)
    assert any(f["expectation"] == expectation and f["column"] == column for f in err.value.failures)
    json.dumps(err.value.failures)


def test_short_class_is_named_with_shortfall(data) -> None:
    images, labels, test = data
    with pytest.raises(DataCheckError, match=r"class 2 has 15, needs 20 \(short by 5\)") as err:
        check(images[:-5], labels[:-5], test)
    assert "expect_column_pair_values_a_to_be_greater_than_b" in str(err.value)
    assert err.value.failures == [{
        "set": "candidates", "expectation": "expect_column_pair_values_a_to_be_greater_than_b", "column": "count",
        "success": False, "observed": [{"class": 2, "count": 15, "required": 20, "short_by": 5}],
        "expected": "count >= required for every class",
    }]


def test_duplicate_fraction_limit_is_inclusive(data) -> None:
    images, labels, test = data
    assert check(_copy_rows(images, 0, slice(1, 4)), labels, test).success  # 3 of 60 = 5 %


def test_forbidden_copy_is_caught_whatever_its_dtype_or_layout(data) -> None:
    images, labels, test = data
    forbidden = np.asfortranarray(test.astype(np.float64))
    with pytest.raises(DataCheckError, match="expect_column_values_to_not_be_in_set"):
        check(_set(images, 0, test[9]), labels, forbidden)


def test_empty_set_fails_unless_nothing_is_required(data) -> None:
    images, labels, test = data
    with pytest.raises(DataCheckError, match="expect_table_row_count_to_be_between"):
        check(images[:0], labels[:0], test, required_per_class=None)
    assert check(images[:0], labels[:0], test, required_per_class=[0, 0, 0]).success


def test_report_mode_lists_failures_and_serialises(data) -> None:
    images, labels, test = data
    report = check(_set(images, (3, 0, 0, 0), np.nan), labels, test, raise_on_failure=False)
    assert not report.success
    failed = [r for r in report.results if not r["success"]]
    assert [(r["expectation"], r["column"]) for r in failed] == [("expect_column_values_to_be_in_set", "finite")]
    assert failed[0]["observed"]["unexpected_index"] == [3]
    assert json.loads(json.dumps(report.to_dict()))["name"] == "candidates"


def test_mismatched_required_per_class_is_a_usage_error(data) -> None:
    with pytest.raises(ValueError, match="required_per_class"):
        check(*data, required_per_class=[1, 1])
