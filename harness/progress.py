"""Progress for steps that take more than a moment. Library code reports; only the CLI draws."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console

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
