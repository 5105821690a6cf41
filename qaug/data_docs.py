"""Great Expectations Data Docs for the pipeline's data checks, where GX users look for them, offline.

The stages validate each generated set in an ephemeral GX context (fast, byte-reproducible) and keep GX's
validation result in ``data/checks/<set>.json``. This module turns those results into a file-backed GX project
(``gx/``: one suite, validation definition and asset per checked table, a ``qaug`` checkpoint, the validation
results) and builds its Data Docs. GX's page templates load scripts, styles and a logo from CDNs; the built
pages are rewritten to load qaug's copies of those files (``data_docs_assets/``), so they open from disk with
no network. gx/ is rebuilt from the checks each time, not edited by hand: GX gives its objects random ids, so
it is kept out of git and out of DVC's reproducible outputs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

from qaug.io import read_json

ASSETS = Path(__file__).with_name("data_docs_assets")
SITE = Path("gx/uncommitted/data_docs/local_site")
DATASOURCE, CHECKPOINT = "qaug", "qaug"
# GX's navbar logo comes from S3 with the context id in the query; GX ships the same image in the site's static/.
REMOTE_CSS = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])((?:https?:)?//[^'\")\s]+)")
LOCAL_SRI = re.compile(r'(<(?:script|link)\s[^>]*?static/vendor/[^>]*?)\s+integrity="[^"]*"\s+crossorigin="[^"]*"')
SITE_STATIC = re.compile(r'((?:src|href)=)"(?:\.{1,2}/)*(static/[^"]+)"')
S3_IMAGE = re.compile(r"https://great-expectations-web-assets\.s3[^\"']*?/([\w.-]+\.(?:png|svg))(?:\?[^\"']*)?")


class DataDocsError(RuntimeError):
    """A built page would still load something from the network."""


@dataclass(frozen=True)
class CheckedSet:
    """One generated set's checks as a stage wrote them, and when (the file's time: the stage validated then)."""

    name: str
    validations: list[dict]
    checked_at: datetime

    @classmethod
    def read(cls, path: Path) -> CheckedSet | None:
        """None for a report written before the stages kept GX's results (rerun that stage to include it)."""
        report = read_json(path)
        if not report.get("validations"):
            return None
        return cls(report["name"], report["validations"], datetime.fromtimestamp(path.stat().st_mtime, timezone.utc))


def build(checked: list[CheckedSet], root: Path = Path(".")) -> Path:
    """Write ``root/gx`` from the checks and build its Data Docs; returns the site's index.html."""
    context = _context(root)
    source = context.data_sources.get(DATASOURCE) if DATASOURCE in context.data_sources.all() else context.data_sources.add_pandas(DATASOURCE)
    validation_definitions = [_store(context, source, validation, checked_set.checked_at)
                              for checked_set in checked for validation in checked_set.validations]
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    # The checkpoint a user reruns on new data: checkpoint.run(batch_parameters={"dataframe": table}).
    context.checkpoints.add_or_update(gx.Checkpoint(name=CHECKPOINT, validation_definitions=validation_definitions,
                                                    actions=[UpdateDataDocsAction(name="update_data_docs")]))
    context.build_data_docs()
    site = root / SITE
    make_offline(site)
    return site / "index.html"


def _context(root: Path):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _store(context, source, validation: dict, checked_at: datetime):
    """The table's suite, asset, batch definition and validation definition, and its stored result."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (ExpectationSuiteIdentifier,
                                                                             ValidationResultIdentifier)
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    name = validation["suite_name"]
    configs = [ExpectationConfiguration(**{k: r["expectation_config"][k] for k in ("type", "kwargs", "meta")})
               for r in validation["results"]]
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=[c.to_domain_obj() for c in configs]))
    asset = source.get_asset(name) if name in {a.name for a in source.assets} else source.add_dataframe_asset(name)
    batches = {b.name: b for b in asset.batch_definitions}
    batch = batches.get(name) or asset.add_batch_definition_whole_dataframe(name)
    definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch, suite=suite))

    run_id = RunIdentifier(run_name="qaug", run_time=checked_at)
    result = ExpectationSuiteValidationResult(
        success=validation["success"],
        results=[ExpectationValidationResult(success=r["success"], expectation_config=c, result=r["result"],
                                             exception_info=r["exception_info"])
                 for r, c in zip(validation["results"], configs)],
        suite_name=name,
        statistics=validation["statistics"],
        meta={"great_expectations_version": gx.__version__, "run_id": run_id, "validation_time": checked_at,
              "checkpoint_name": CHECKPOINT, "validation_id": definition.id, "batch_spec": {"batch_data": "PandasDataFrame", "data_asset_name": name},
              "active_batch_definition": {"datasource_name": DATASOURCE, "data_connector_name": "fluent",
                                          "data_asset_name": name, "batch_identifiers": {"dataframe": "<DATAFRAME>"}}},
    )
    key = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(name=name), run_id=run_id,
                                     batch_identifier=name)
    context.validation_results_store.set(key, result)
    return definition


def make_offline(site: Path) -> None:
    """Point every page and style sheet at the site's copies of the files GX's templates load from CDNs and S3;
    raise DataDocsError if one would still load anything from the network (a GX upgrade with a new asset: add it
    to MANIFEST.json)."""
    assets = json.loads((ASSETS / "MANIFEST.json").read_text())["assets"]
    vendor = site / "static" / "vendor"
    shutil.copytree(ASSETS, vendor, dirs_exist_ok=True, ignore=shutil.ignore_patterns("MANIFEST.json"))
    for page in [*site.rglob("*.html"), *(site / "static" / "styles").rglob("*.css")]:
        text = page.read_text(encoding="utf-8")
        for asset in assets:
            text = text.replace(f'"{asset["url"]}"', f'"{_relative(vendor / asset["file"], page)}"')
        text = S3_IMAGE.sub(lambda m: _relative(_gx_image(site, m[1]), page), text)
        # GX links the favicon one folder too high on validation pages (four deep); point every static file
        # reference at the site's static/ from where the page really is.
        text = SITE_STATIC.sub(lambda m: f'{m[1]}"{_relative(site / m[2], page)}"', text)
        # A browser refuses subresource-integrity checks on file:// pages, so a local copy loads without them
        # (tests/test_data_docs.py checks that the copies have the hashes GX's templates pin).
        text = LOCAL_SRI.sub(lambda m: m[1], text)
        remote = network_loads(text) if page.suffix == ".html" else set(REMOTE_CSS.findall(text))
        if remote:
            raise DataDocsError(f"{page} would load {', '.join(sorted(remote))} from the network; "
                                f"add a local copy to {ASSETS / 'MANIFEST.json'}")
        page.write_text(text, encoding="utf-8")


def _gx_image(site: Path, name: str) -> Path:
    """GX's local copy of an S3 image; its long logo for images it does not ship (the dark-theme logo)."""
    images = site / "static" / "images"
    return images / name if (images / name).is_file() else images / "logo-long.png"


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


class _Loads(HTMLParser):
    """The addresses a browser fetches when it opens a page (not the links a reader may follow)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "embed", "video", "audio") and a.get("src"):
            self.urls.add(a["src"])
        if tag == "link" and a.get("href") and (a.get("rel") or "") not in ("canonical",):
            self.urls.add(a["href"])


def network_loads(html: str) -> set[str]:
    """The remote (http, https or protocol-relative) addresses a page loads."""
    parser = _Loads()
    parser.feed(html)
    return {u for u in parser.urls if re.match(r"(https?:)?//", u)}


def build_from_reports(reports: list[Path], root: Path = Path(".")) -> tuple[Path | None, list[Path]]:
    """Data Docs from those of the stages' check reports that exist: (the site's index.html, or None when no
    report holds GX results; the reports written before the stages kept GX's results, left out)."""
    checked, old = [], []
    for path in reports:
        if (root / path).is_file():
            found = CheckedSet.read(root / path)
            (checked if found else old).append(found or path)
    return (build(checked, root) if checked else None), old
