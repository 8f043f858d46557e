"""edgebench's pytest plugin, registered as ``edgebench`` under the ``pytest11`` entry point (pyproject.toml):
wherever the package is installed, pytest has the node's options (``pytest --help``, group edgebench), the
``edge``/``matrix`` markers, the cases parametrized from the options, the processor's identity in
pytest-benchmark's ``machine_info["edgebench"]``, the figures summary at the end of the run and the node
report (--edgebench-node-report). ``-p no:edgebench`` turns it off.

Edge nodes run ``pytest -m edge --benchmark-json=node.json`` (optionally ``--edgebench-artifact=s3://…``).
Without an artifact, a small model is trained once on the procedural dataset and cached under
``<rootdir>/.cache/edgebench/pytest`` (file-locked, keyed by the training code and configuration).

Modules: ``options`` (the command line), ``cases`` (suite models, the ladder, parametrization), ``models``
(the models under test, the given artifact), ``fixtures`` (session fixtures), ``figures`` (terminal summary,
node report), ``helpers`` (what suites import). Session state lives on ``config.stash`` (``FIGURES``,
``GIVEN_MODEL``), never in module globals.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

import pytest

from harness.measure import processor_identity
from harness.pytest_plugin import cases, options
from harness.pytest_plugin.figures import FIGURES, FigureCollector, Figures
from harness.pytest_plugin.models import import_given_model

pytest_plugins = ["harness.pytest_plugin.fixtures"]

MARKERS = {
    "edge": "runs on an edge node against an imported artifact (parity and latency); "
    "`pytest -m edge --benchmark-json=out.json`",
    "matrix": "the parity matrix beyond a node's own cases (other suite models, AUTO/GPU/NPU, batch 4); "
    "`make test` runs it",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    config.stash[FIGURES] = Figures()
    config.pluginmanager.register(FigureCollector(config), "edgebench-figures")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    cases.parametrize(metafunc)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    import_given_model(session.config)


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark may be disabled (-p no:benchmark)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Put the processor's identity (CPU brand, ISA flags, OpenVINO device names, versions) in the JSON, so
    results from many edge nodes can be told apart and compared."""
    machine_info["edgebench"] = processor_identity()
