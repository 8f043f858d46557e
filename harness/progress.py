"""Progress for steps that take more than a moment. Library code reports; only the CLI draws."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console

# When set, each step and sub-step appends "<unix time> <stage>" here as it starts (the kill tests, a watchdog).
STAGE_LOG_ENV = "EDGEBENCH_STAGE_LOG"

# advance(steps_done, note): called as work inside a step completes.
Advance = Callable[[int, str], None]


class Progress(Protocol):
    def step(self, title: str, total: int | None = None) -> AbstractContextManager[Advance]: ...

    def note(self, line: str) -> None:
        """One line the user should see (e.g. what a run added or skipped on its own)."""


def _unseen(done: int, note: str = "") -> None:
    """SilentProgress's ``advance``: nothing to draw."""


class SilentProgress:
    @contextmanager
    def step(self, title: str, total: int | None = None) -> Iterator[Advance]:
        yield _unseen

    def note(self, line: str) -> None:
        pass


class RichProgress:
    """One line per step: a spinner (or a bar when the step knows its total), then a tick and its duration."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def step(self, title: str, total: int | None = None) -> Iterator[Advance]:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total:
            columns += [BarColumn(), TextColumn("{task.completed}/{task.total}")]
        started = time.perf_counter()
        with Progress(*columns, TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(title, total=total)

            def advance(done: int, note: str = "") -> None:
                bar.update(task, completed=done, description=f"{title} {note}".rstrip())

            yield advance
        self.console.print(f"[green]✓[/green] {title} [dim]({time.perf_counter() - started:.1f} s)[/dim]")

    def note(self, line: str) -> None:
        from rich.markup import escape

        self.console.print(f"[yellow]•[/yellow] {escape(line)}", highlight=False)


class Steps:
    """Shows progress for a step and records how long it took."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.stage_log = os.environ.get(STAGE_LOG_ENV)

    def mark(self, stage: str) -> None:
        """Append ``<unix time> <stage>`` to $EDGEBENCH_STAGE_LOG, if set, as a stage starts."""
        if self.stage_log:
            with Path(self.stage_log).open("a", encoding="utf-8") as handle:
                handle.write(f"{time.time():.3f} {stage}\n")

    @contextmanager
    def __call__(self, key: str, title: str, total: int | None = None) -> Iterator[Advance]:
        self.mark(key)
        started = time.perf_counter()
        try:
            with self.progress.step(title, total) as advance:
                yield advance
        finally:
            self.seconds[key] = round(time.perf_counter() - started, 3)
