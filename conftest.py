"""This repository's own suites: their options (the parity spread, the gate's power measurements), the S3
fixtures on an embedded moto server, a headless browser for the HTML reports and the hypothesis profiles.

Everything a node needs (options, markers, cases, session fixtures, machine info, figures summary, node
report) is the edgebench pytest plugin, harness/pytest_plugin/, registered through the ``pytest11`` entry
point of the installed package; it is not imported here (that would register it twice).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings as _hypothesis_settings

from harness import store


def pytest_configure(config: pytest.Config) -> None:
    """The suites need the plugin (its fixtures, markers and options): a virtualenv installed before it had an
    entry point, or a session that blocked it, says so here in one line instead of in an error per test."""
    if config.pluginmanager.is_blocked("edgebench"):
        raise pytest.UsageError(
            "this repository's suites need edgebench's pytest plugin: drop -p no:edgebench (it is for other "
            "projects sharing the virtualenv)"
        )
    if not config.pluginmanager.has_plugin("edgebench"):
        raise pytest.UsageError(
            "edgebench's pytest plugin is not loaded: run `make install` or `pip install -e .` "
            "(its pytest11 entry point); with PYTEST_DISABLE_PLUGIN_AUTOLOAD, pass -p edgebench"
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgebench")
    group.addoption(
        "--edgebench-spread-trainings",
        type=int,
        default=5,
        metavar="N",
        help="independent trainings per suite model in suites/test_parity_spread.py (default 5)",
    )
    group.addoption(
        "--edgebench-gate-trials",
        type=int,
        default=6,
        metavar="N",
        help="interleaved A/B trials in suites/test_gate_power.py (default 6, ~25 s each)",
    )
    group.addoption(
        "--edgebench-gate-runs",
        type=int,
        default=20,
        metavar="N",
        help="separate A/A and slowed runs for the stored-baseline figures (default 20 each)",
    )
    group.addoption(
        "--edgebench-gate-spacing",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds from one separate run's start to the next's (default 30): drift needs time",
    )


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for the whole session (state persists: tests use unique buckets)."""
    with store.embedded_s3() as endpoint:
        yield endpoint


@pytest.fixture
def aws_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials through the standard chain (env), as moto's own tests do; no real profile is read."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3_location(s3_endpoint: str, aws_dummy_credentials: None, request: pytest.FixtureRequest):
    """A uniquely named, empty bucket on the session's moto server, emptied and deleted afterwards."""
    import uuid

    location = store.S3Location(
        bucket=f"edgebench-test-{uuid.uuid4().hex[:12]}", prefix="suite", endpoint_url=s3_endpoint
    )
    s3 = store.S3Store(location)
    s3.ensure_bucket(create=True)
    try:
        yield location
    finally:
        for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket):
            for item in page.get("Contents", []):
                s3.client.delete_object(Bucket=location.bucket, Key=item["Key"])
        s3.client.delete_bucket(Bucket=location.bucket)


@pytest.fixture
def headless_chromium(tmp_path: Path):
    """page.html -> (its DOM after loading, the fraction of dark pixels in a 1200x2400 screenshot), rendered
    by Debian's Chromium from disk; skips where Chromium is not installed."""
    import subprocess

    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]

    def render(page: Path) -> tuple[str, float]:
        url = Path(page).resolve().as_uri()
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        shot = tmp_path / "chromium-shot.png"
        subprocess.run(
            [browser, *flags, f"--screenshot={shot}", "--window-size=1200,2400", url], capture_output=True, timeout=120
        )
        return dom, float((np.asarray(Image.open(shot).convert("L")) < 200).mean())

    return render


# Hypothesis: a quick default profile for CI, a deeper one with --hypothesis-profile=nightly.
_hypothesis_settings.register_profile("ci", max_examples=40, deadline=None)
_hypothesis_settings.register_profile("nightly", max_examples=2000, deadline=None)
_hypothesis_settings.load_profile("ci")  # --hypothesis-profile=nightly overrides
