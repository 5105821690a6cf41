import dataclasses

import pytest
import torch
import yaml

from qaug.params import ParamsError, load_params, section
from tasks.filter import FilterParams
from tasks.ingest import IngestParams
from tasks.stages import STAGES, check_params
from tests.pipeline_helpers import PROJECT


def test_params_yaml_parses_for_every_stage_and_documents_every_field() -> None:
    """Each stage reads exactly the sections it declares (dvc.yaml's params), and params.yaml lists every field."""
    raw = load_params(PROJECT / "params.yaml")
    check_params(raw)
    for stage in STAGES:
        parsed = stage.parse(raw)
        typed = [p for p in parsed if dataclasses.is_dataclass(p)]
        sections = list(dict.fromkeys(k.split(".")[0] for k in stage.params if k not in ("seed", "device")))  # augment.method → augment
        assert len(typed) == len(sections), stage.name
        assert ("seed" in stage.params) == any(isinstance(p, int) for p in parsed), stage.name
        assert ("device" in stage.params) == any(isinstance(p, torch.device) for p in parsed), stage.name
        for name, params in zip(sections, typed):
            assert set(raw[name]) == {f.name for f in dataclasses.fields(params)}, f"{stage.name}: section {name}"


def test_defaults_in_params_yaml_match_the_dataclasses() -> None:
    raw = load_params(PROJECT / "params.yaml")
    assert section(FilterParams, raw, "filter") == FilterParams()
    assert section(IngestParams, raw, "ingest") == IngestParams()


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"filter": {"tua": 0.8}}, r"filter\.tua is not a parameter of filter \(known: alpha, beta, max_rounds, min_accepted_fraction, tau\)"),
        ({"filter": {"tau": "high"}}, r"filter\.tau must be a number, got 'high'"),
        ({"filter": {"tau": 1.5}}, r"filter\.tau must be in \[0, 1\], got 1\.5"),
        ({"filter": {"max_rounds": 2.5}}, r"filter\.max_rounds must be an integer"),
        ({"ingest": {"source": "kaggle"}}, r"ingest\.source must be one of 'embedded-mnist', 'torchvision', 'folder'"),
        ({"ingest": {"classes": 3}}, r"ingest\.classes must be a list"),
        ({"augment": {"strategy": "custom"}}, r"augment\.strategy must be one of 'customised', 'general'"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
        ({"quantum": {"backend": "gpu"}}, r"quantum\.backend expected exact, aer, fake:<FakeName>"),
        ({"quantum": {"optimization_level": 4}}, r"quantum\.optimization_level must be 0, 1, 2 or 3"),
    ],
)
def test_bad_params_name_the_key(patch: dict, message: str) -> None:
    raw = load_params(PROJECT / "params.yaml")
    for key, value in patch.items():
        if isinstance(value, dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    with pytest.raises(ParamsError, match=message):
        check_params(raw)


def test_missing_or_broken_params_file(tmp_path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("filter: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"filter": {"tau": 0.5}}))
    assert section(FilterParams, load_params(tmp_path / "params.yaml"), "filter").tau == 0.5


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path) -> None:
    """yaml.safe_load would keep the later value silently (and DVC refuses the file in the middle of a run)."""
    from grid.spec import GridError, load_grid

    params = (PROJECT / "params.yaml").read_text().splitlines()
    tau = next(i for i, line in enumerate(params) if line.strip().startswith("tau:"))
    (tmp_path / "params.yaml").write_text("\n".join([*params[:tau + 1], "  tau: 0.3", *params[tau + 1:]]) + "\n")
    with pytest.raises(ParamsError, match=rf"params.yaml: key filter.tau appears twice \(lines {tau + 1} and {tau + 2}\); keep one$"):
        load_params(tmp_path / "params.yaml")
    for text, message in [("seed: 1\nseed: 2\n", r"key seed appears twice \(lines 1 and 2\)"),
                          ("a:\n  - {x: 1, x: 2}\n", r"key a\[0\]\.x appears twice \(line 2\)")]:
        (tmp_path / "params.yaml").write_text(text)
        with pytest.raises(ParamsError, match=message):
            load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("base: &b {tau: 0.1}\nfilter:\n  <<: *b\n  tau: 0.2\n")  # a merge key may be overridden
    assert load_params(tmp_path / "params.yaml")["filter"] == {"tau": 0.2}
    (tmp_path / "g.yaml").write_text("methods: [gan1]\nseeds: 1\nmethods: [none]\n")
    with pytest.raises(GridError, match=r"g.yaml: key methods appears twice \(lines 1 and 3\); keep one"):
        load_grid(tmp_path / "g.yaml")


def test_a_params_file_that_is_not_utf8_says_so(tmp_path) -> None:
    (tmp_path / "params.yaml").write_bytes("seed: 0\n# réglages\n".encode("latin-1"))
    with pytest.raises(ParamsError, match=r"params.yaml is not UTF-8 text \(byte 0xe9 on line 2\); save it as UTF-8"):
        load_params(tmp_path / "params.yaml")


def test_a_misspelt_section_is_an_error() -> None:
    raw = load_params(PROJECT / "params.yaml")
    raw["filtre"] = {"tau": 0.1}
    with pytest.raises(ParamsError, match="unknown section.s. filtre"):
        check_params(raw)
