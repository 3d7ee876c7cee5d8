"""A progress display for the executor: one line per target, messages above.

On a terminal the lines are live and fit the screen. Anywhere else (a CI log, a
pipe to tee) a live display is a last frame cut at 80 columns, so each finished
step is printed instead as one whole plain line, however long.
"""

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
        self.live = self.console.is_terminal
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
        if self.live:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live:
            self._progress.stop()

    def _plain(self, text: str) -> None:
        # soft_wrap: no wrapping and no cropping at the console's width.
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def announce(self, message: str) -> None:
        if not self.live:
            self._plain(message)
            return
        self._progress.console.print(message, markup=False, highlight=False)

    def update(self, result: StepResult) -> None:
        if not self.live:
            self._line(result)
            return
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

    def _line(self, result: StepResult) -> None:
        """One finished step, whole: target, outcome, description, and its error if any."""
        if result.outcome is Outcome.RUNNING:
            return  # said when it finishes; a log needs no "started" line per step
        line = f"{result.target} {result.outcome} {result.description}"
        if result.error:
            # Driver errors start with the target's name, already at the head of the line.
            error = result.error.removeprefix(f"{result.target}: ")
            line += f": {error}"
        self._plain(line)
