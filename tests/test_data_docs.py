"""Great Expectations Data Docs from the stages' check reports: a file-backed gx/ project whose HTML opens offline."""

import base64
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from qaug.checks import check_image_set
from cli.main import main
from qaug.data_docs import ASSETS, REMOTE_CSS, SITE, DataDocsError, build_from_reports, make_offline, network_loads
from qaug.io import write_json
from tasks.layout import files
from tasks.report import CHECKS, check_rows, checks_markdown
from tasks.stages import NAMES, get

SHAPE = (1, 4, 4)


def _reports(root: Path) -> None:
    """The generate stage's report passes; the filter stage's misses class 2's required count."""
    rng = np.random.default_rng(0)
    images = rng.random((30, *SHAPE), dtype=np.float32)
    labels = np.arange(30) % 3
    for path, required in ((CHECKS[0], [10, 10, 10]), (CHECKS[1], [5, 5, 12])):
        name = path.stem
        report = check_image_set(name, images, labels, num_classes=3, image_shape=SHAPE, required_per_class=required,
                                 forbidden=rng.random((4, *SHAPE), dtype=np.float32), raise_on_failure=False)
        write_json(root / path, report.to_dict())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    _reports(root)
    index, old = build_from_reports(list(CHECKS), root)
    assert index == root / SITE / "index.html" and old == []
    return root


def _local_targets(html: str) -> set[str]:
    return {u for u in re.findall(r'(?:src|href)="([^"#?]+)"', html) if not re.match(r"[a-z]+:", u)}


def test_gx_project_holds_suites_validation_definitions_checkpoint_and_results(site) -> None:
    gx_dir = site / "gx"
    suites = {p.stem for p in (gx_dir / "expectations").glob("*.json")}
    assert suites == {"candidates-samples", "candidates-classes", "accepted-samples", "accepted-classes"}
    assert {p.stem for p in (gx_dir / "validation_definitions").glob("*.json")} == suites
    checkpoint = json.loads((gx_dir / "checkpoints" / "qaug.json").read_text())
    assert len(checkpoint["validation_definitions"]) == 4
    assert checkpoint["actions"][0]["type"] == "update_data_docs"
    stored = {json.loads(p.read_text())["suite_name"]: json.loads(p.read_text())["success"]
              for p in (gx_dir / "uncommitted" / "validations").rglob("*.json")}
    assert stored == {"candidates-samples": True, "candidates-classes": True, "accepted-samples": True, "accepted-classes": False}


def test_every_page_opens_offline_with_its_local_files_present(site) -> None:
    pages = list((site / SITE).rglob("*.html"))
    assert len(pages) == 1 + 4 + 4  # index, a page per suite and per validation result
    for page in pages:
        html = page.read_text()
        assert network_loads(html) == set(), page
        missing = [u for u in _local_targets(html) if not (page.parent / u).resolve().exists()]
        assert missing == [], (page, missing)
    for sheet in (site / SITE / "static").rglob("*.css"):
        assert REMOTE_CSS.findall(sheet.read_text()) == [], sheet
    failing = next((site / SITE / "validations" / "accepted-classes").rglob("*.html")).read_text()
    assert "Failed" in failing and "expect_column_pair_values_a_to_be_greater_than_b" in json.dumps(
        json.loads(next((site / "gx" / "expectations").glob("accepted-classes.json")).read_text()))


def test_local_copies_are_the_bytes_gx_templates_pin() -> None:
    """Where GX's templates pin a file with a subresource-integrity hash, qaug's copy has that hash; every CDN file
    the templates load has a copy."""
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    text = "\n".join(p.read_text() for p in templates.glob("*.j2"))
    manifest = {a["url"]: a["file"] for a in json.loads((ASSETS / "MANIFEST.json").read_text())["assets"]}
    assert set(re.findall(r'(?:src|href)="(https://[^"]+\.(?:js|css)|https://cdn\.jsdelivr\.net/npm/[^"]+)"', text)) <= set(manifest)
    pinned = re.findall(r'(?:src|href)="(https://[^"]+)"\s+integrity="sha384-([^"]+)"', text)
    assert pinned
    for url, digest in pinned:
        assert base64.b64encode(hashlib.sha384((ASSETS / manifest[url]).read_bytes()).digest()).decode() == digest, url


def test_a_page_that_would_load_an_unknown_cdn_file_is_refused(tmp_path) -> None:
    (tmp_path / "static" / "styles").mkdir(parents=True)
    (tmp_path / "index.html").write_text('<html><script src="https://cdn.example.org/new.js"></script></html>')
    with pytest.raises(DataDocsError, match="cdn.example.org/new.js"):
        make_offline(tmp_path)


def test_check_reports_repeat_byte_for_byte(tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):
        _reports(root)
    assert (first / CHECKS[1]).read_bytes() == (second / CHECKS[1]).read_bytes()


def test_failed_checks_are_named_in_rows_summary_and_qaug_docs(site, monkeypatch, capsys) -> None:
    failed = check_rows(site, failed_only=True)
    assert [(r["set"], r["expectation"], r["observed"]) for r in failed] == [
        ("accepted", "expect_column_pair_values_a_to_be_greater_than_b", "class 2: 10 of 12")]
    lines = checks_markdown(site)
    assert "- candidates: all 12 expectations passed" in lines
    assert any(line.startswith("- accepted: failed 1 of 12 expectations") for line in lines)
    monkeypatch.chdir(site)
    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    assert "accepted: failed 1 of 12" in out and f"Data Docs: {(site / SITE / 'index.html').resolve().as_uri()}" in out


def test_qaug_docs_without_checks_says_what_to_run(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["docs"]) == 1
    assert "run the pipeline" in capsys.readouterr().err


def test_report_list_matches_the_stages_check_outputs() -> None:
    outs = {p for name in NAMES for p in files(get(name).paths_object(), "out") if p.parts[:2] == ("data", "checks")}
    assert outs == set(CHECKS)


def test_rerunning_the_stored_leakage_expectation_checks_every_test_image(tmp_path) -> None:
    """The stages validate against the test digests found in the set (fast, same verdict); gx/ keeps them all, so
    the checkpoint's validation rerun on a set holding a test image fails."""
    import great_expectations as gx

    from qaug.checks import _sample_table

    rng = np.random.default_rng(1)
    images, labels, test = rng.random((6, *SHAPE), dtype=np.float32), np.arange(6) % 3, rng.random((4, *SHAPE), dtype=np.float32)
    report = check_image_set("accepted", images, labels, num_classes=3, image_shape=SHAPE, forbidden=test, raise_on_failure=False)
    assert report.success
    write_json(tmp_path / CHECKS[1], report.to_dict())
    build_from_reports([CHECKS[1]], tmp_path)
    context = gx.get_context(mode="file", project_root_dir=str(tmp_path))
    stored = context.suites.get("accepted-samples").expectations[-1]
    assert stored.expectation_type == "expect_column_values_to_not_be_in_set" and len(stored.value_set) == 4
    checkpoint = context.checkpoints.get("qaug")
    definition = next(d for d in checkpoint.validation_definitions if d.name == "accepted-samples")
    leaked = _sample_table(np.concatenate([images, test[2:3]]), np.concatenate([labels, [1]]))
    result = definition.run(batch_parameters={"dataframe": leaked})
    assert [r.expectation_config.type for r in result.results if not r.success] == ["expect_column_values_to_not_be_in_set"]
