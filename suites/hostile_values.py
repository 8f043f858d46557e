"""Hostile inputs, family 5: hyperparameters and CLI values (hypothesis: 0, negative, NaN, huge, wrong type)
through ``Hyperparameters.from_mapping`` and ``edgebench run|train|predict``, plus every CLI option's edge
values. Hypothesis runs derandomized, so every run sees the same cases."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness.training import hyperparameters, train
from hostile_sweep import Case, CliRefused, Sweep, good_dataset, run_cli

SPEC = Path(train.__file__).parent / "jumpstart_metadata" / "community_models" / train.DEFAULT_MODEL_ID


def _spec_bounds() -> dict[str, tuple[float | None, float | None]]:
    spec = json.loads(next(SPEC.glob("specs_*.json")).read_text())
    return {h["name"]: (h.get("min"), h.get("max")) for h in spec["hyperparameters"] if h["type"] in ("int", "float")}


HP_NAMES = sorted({f.name for f in dataclasses.fields(train.Hyperparameters)} | set(hyperparameters.LEGACY_NAMES))
TEXT_VALUES = [
    "0",
    "-1",
    "-0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "1e20",
    "1e-320",
    "1_000",
    "0x10",
    " 5 ",
    "True",
    "false",
    "None",
    "[]",
    "",
    "½",
    "٣",
    "9" * 30,
    "2.5",
    "1e3",
    "0.9999999999999999",
]
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.sampled_from(TEXT_VALUES),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
)


def _hyperparameters(values: dict[str, Any], run_dir: Path) -> str:
    """``Hyperparameters.from_mapping`` (what ``--hp`` and a training container read); an accepted set must
    lie inside the JumpStart spec's published bounds."""
    hp = train.Hyperparameters.from_mapping(values)
    for name, (low, high) in _spec_bounds().items():
        value = getattr(hp, name)
        assert not isinstance(value, float) or np.isfinite(value), f"accepted {name}={value}"
        assert (low is None or value >= low) and (high is None or value <= high), (
            f"accepted {name}={value!r} outside JumpStart's [{low}, {high}]"
        )
    return "accepted"


CLI_OPTIONS = [
    "--epochs",
    "--seed",
    "--holdout",
    "--images-per-class",
    "--min-calls",
    "--hp",
    "--backend",
    "--precision",
    "--device",
    "--trainer",
    "--model-id",
    "--prefix",
]
CLI_EDGES = ["0", "-1", "nan", "9" * 20, "x"]
PREDICT_OPTIONS = ["--backend", "--precision", "--device", "--region"]


def _cli_value(prepared: tuple[Path, list[str], str], run_dir: Path) -> str:
    """``edgebench run|train`` with one fuzzed option on a small dataset and an unreachable --holdout (or a
    dataset with a stray file, when --holdout itself is fuzzed): an accepted value takes the run to the dataset
    step, which stops it in one line; a refused value is one line before any work."""
    _inputs, argv, stop = prepared
    try:
        run_cli(argv)
    except CliRefused as refused:
        if stop in str(refused):
            return "accepted (stopped at the dataset step as arranged)"
        raise
    raise AssertionError(f"edgebench {argv[0]} went past the dataset step")


def _cli_argv(inputs: Path, command: str, option: str, value: Any, hp_name: str) -> tuple[list[str], str]:
    text = value if isinstance(value, str) else json.dumps(value) if not isinstance(value, float) else repr(value)
    good, stray = inputs / "good", inputs / "stray"
    if command == "predict":
        return (
            ["predict", str(good / "cloudy" / "cloudy_0.png"), "--model", str(inputs / "missing.tar.gz"), option, text],
            "no such model.tar.gz",
        )
    argv = [command, "--reports-dir", "reports", "--cache-dir", "cache", "--backend", "tf"]
    if option == "--hp":
        return [*argv, "--dataset", str(good), "--holdout", "100000", "--hp", f"{hp_name}={text}"], "100000 held out"
    if option == "--holdout":
        return [*argv, "--dataset", str(stray), "--holdout", text], "at the top level"
    if option == "--backend":
        argv = argv[:-2]
    return [*argv, "--dataset", str(good), "--holdout", "100000", option, text], "100000 held out"


def _cli_inputs(inputs: Path) -> None:
    good_dataset(inputs / "good")
    good_dataset(inputs / "stray")
    (inputs / "stray" / "stray.txt").write_text("x")


def _generated(examples: int) -> settings:
    """``examples`` cases, the same every run: derandomize seeds hypothesis with a digest of the decorated
    function's source (decorators and indentation included, comments not), so editing one of the functions
    below changes its cases."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _hyperparameter_sweep(sweep: Sweep, examples: int) -> None:
    generated = _generated(examples)

    @generated
    @given(st.dictionaries(st.sampled_from([*HP_NAMES, "epoch", "", "EPOCHS"]), VALUES, min_size=1, max_size=3))
    def hyperparameters(values):
        sweep.run(
            "hyperparameters",
            Case(f"hp-{len(sweep.outcomes)}-{sorted(values)}", lambda inputs: values, _hyperparameters),
        )

    hyperparameters()


def _cli_value_sweep(sweep: Sweep, examples: int) -> None:
    generated = _generated(examples)

    @generated
    @given(
        st.sampled_from(["run", "train", "predict"]),
        st.sampled_from(CLI_OPTIONS),
        VALUES,
        st.sampled_from(["epochs", "batch_size", "learning_rate", "validation_split_ratio", "random_seed"]),
    )
    def cli_values(command, option, value, hp_name):
        if command == "predict" and option not in PREDICT_OPTIONS:
            option = PREDICT_OPTIONS[CLI_OPTIONS.index(option) % len(PREDICT_OPTIONS)]

        def prepare(inputs: Path):
            _cli_inputs(inputs)
            argv, stop = _cli_argv(inputs, command, option, value, hp_name)
            return inputs, argv, stop

        sweep.run("cli values", Case(f"cli-{len(sweep.outcomes)}-{command}{option}", prepare, _cli_value))

    cli_values()


def _cli_edge_sweep(sweep: Sweep) -> None:
    for i, (option, value) in enumerate((o, v) for o in CLI_OPTIONS for v in CLI_EDGES):  # every option's edges

        def prepare(inputs: Path, command=("run", "train")[i % 2], option=option, value=value):
            _cli_inputs(inputs)
            return inputs, *_cli_argv(inputs, command, option, value, "batch_size")

        sweep.run("cli values", Case(f"cli-edge-{option}={value}", prepare, _cli_value))


def value_sweep(sweep: Sweep, examples: int) -> None:
    """``examples`` generated hyperparameter sets, ``examples`` generated CLI values, then every option's edges."""
    _hyperparameter_sweep(sweep, examples)
    _cli_value_sweep(sweep, examples)
    _cli_edge_sweep(sweep)
