"""A progress display for the executor: one line per target, messages above."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from labctl.engine.executor import Outcome, StepResult

_STYLE = {
    Outcome.CHANGED: "green",
    Outcome.UNCHANGED: "dim",
    Outcome.SKIPPED: "dim",
    Outcome.WOULD_CHANGE: "yellow",
    Outcome.FAILED: "bold red",
    Outcome.BLOCKED: "red",
    Outcome.RUNNING: "cyan",
}


class StepProgress:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            # Names whole; the last step's text is what gives way on a narrow screen.
            TextColumn("{task.fields[target]}", table_column=Column(min_width=10, no_wrap=True)),
            TextColumn("{task.completed:>3} done", table_column=Column(min_width=8, no_wrap=True)),
            TextColumn(
                "{task.fields[last]}",
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StepProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def announce(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)

    def update(self, result: StepResult) -> None:
        task = self._tasks.get(result.target)
        if task is None:
            task = self._progress.add_task("", total=None, target=result.target, last="")
            self._tasks[result.target] = task
        style = _STYLE[result.outcome]
        last = f"[{style}]{result.outcome}[/] {escape(result.description)}"
        done = result.outcome is not Outcome.RUNNING
        self._progress.update(task, advance=1 if done else 0, last=last)
        if result.error:
            # Driver errors already start with the target's name; others get it here.
            error = result.error
            if not error.startswith(result.target):
                error = f"{result.target}: {error}"
            # Escaped: remote stderr may hold brackets that rich would read as markup.
            self._progress.console.print(f"[red]{escape(error)}[/]", highlight=False)
