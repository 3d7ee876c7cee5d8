"""No shell script with control flow hides in a Python string under labctl/.

A script longer than a few lines is a ``.sh`` file the project ships (``labctl/data/
scripts/``, or beside the module that runs it, as ``labctl/sim/chassis.sh``), which
``shellcheck`` reads in ``scripts/test``. This test reads every module with ``ast``
(nothing imported) and fails on a string that is shell with control flow and more
than ``MAX_LINES`` lines, so a new inline script fails here. Three shapes are read:
a string (docstrings aside), an f-string (its literal parts, each value as ``X``),
and a list or tuple of strings (the lines a script is joined from). And no f-string
puts a value into shell control flow, however short: values reach a script as its
arguments, never pasted into its text.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "labctl"
MAX_LINES = 3

# Shell's control flow as it shows in a script: a line ending in `; then` or `; do`,
# a one-line `if ...; then ...; fi` or loop, a line that is one of its keywords, or one
# that opens a loop or a case.
CONTROL = re.compile(
    r";\s*(then|do)\s*$"
    r"|;\s*(then|do)\s+\S.*;\s*(fi|done)\b"
    r"|^\s*(then|do|else|fi|done|esac)\s*(;.*)?$"
    r"|^\s*(if|elif|while|until)\s+\S.*(;\s*then|;\s*do|\]|\))\s*$"
    r"|^\s*for\s+\w+(\s+in\s.*)?;?\s*(do)?\s*$"
    r"|^\s*case\s.+\sin\s*$",
    re.M,
)

# Inline scripts left where they are, each by a line only it holds, with why. An entry
# that no longer matches a script fails, so the table only shrinks.
PENDING: dict[str, str] = {}


def _flat(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "X" for v in node.values)
    return None


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and _flat(first.value) is not None:
                found.add(id(first.value))
    return found


def strings(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string, f-string and list of strings in ``source``."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.List | ast.Tuple):
            parts = [_flat(e) for e in node.elts]
            lines = [p for p in parts if p is not None]
            if len(lines) > 1:
                yield node.lineno, "\n".join(lines)
        elif isinstance(node, ast.expr):
            text = _flat(node)
            if text is not None:
                yield node.lineno, text


def inline_scripts(source: str) -> list[tuple[int, list[str]]]:
    """(line, its lines) of every string in ``source`` that is shell with control flow
    and more than ``MAX_LINES`` lines."""
    found = []
    for line, text in strings(source):
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        if len(lines) > MAX_LINES and CONTROL.search(text):
            found.append((line, lines))
    return found


def test_no_module_holds_a_shell_script_longer_than_a_few_lines() -> None:
    wrong, pending = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(ROOT)
        for line, lines in inline_scripts(path.read_text()):
            known = PENDING.keys() & set(lines)
            if known:
                pending |= known
                continue
            wrong.append(
                f"{name}:{line}: a {len(lines)}-line shell script in a Python string; ship "
                "it as a .sh file (labctl/data/scripts/, read with labctl.data.shell, or "
                "beside a labctl/sim module) so shellcheck reads it"
            )
    assert not wrong, "\n".join(wrong)
    stale = sorted(set(PENDING) - pending)
    assert not stale, f"PENDING names scripts no longer inline (remove them): {stale}"


def pasted_scripts(source: str) -> list[int]:
    """Lines of the f-strings in ``source`` that put a value into shell control flow (a
    value reaches a script as an argument, never as part of its text)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        ):
            text = _flat(node)
            if text is not None and CONTROL.search(text):
                found.append(node.lineno)
    return found


# f-strings left pasting values into shell, each by the file and a piece of its text.
PASTED_PENDING: dict[tuple[str, str], str] = {}


def test_no_value_is_pasted_into_a_script_with_control_flow() -> None:
    wrong, pending = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(ROOT))
        source = path.read_text()
        tree = ast.parse(source)
        texts = {n.lineno: _flat(n) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)}
        for line in pasted_scripts(source):
            known = {k for k in PASTED_PENDING if k[0] == name and k[1] in (texts[line] or "")}
            if known:
                pending |= known
                continue
            wrong.append(
                f"{name}:{line}: an f-string puts values into a shell script; ship the "
                "script as a file and pass the values as its arguments"
            )
    assert not wrong, "\n".join(wrong)
    stale = sorted(set(PASTED_PENDING) - pending)
    assert not stale, f"PASTED_PENDING names f-strings no longer there (remove them): {stale}"


def test_a_value_pasted_into_a_script_is_found() -> None:
    pasted = 'def f(d: str) -> str:\n    return f"set -e; if [ -e {d} ]; then mv {d} x; fi"\n'
    assert pasted_scripts(pasted) == [2]
    assert pasted_scripts('S = "if [ -e $1 ]; then mv $1 x; fi"\n') == []
    assert pasted_scripts('def f(d: str) -> str:\n    return f"mkdir -p {d}"\n') == []


@pytest.mark.parametrize(
    "source",
    [
        'S = r"""\nset -e\nif [ -f "$1" ]; then\n  cat "$1"\nfi\n"""\n',
        'S = """\nfor f in "$@"; do\n  echo "$f"\n  echo more\ndone\n"""\n',
        'def f(d: str) -> list[str]:\n    return ["set -e", f"if [ -e {d} ]; then",'
        ' "  rm x", "fi"]\n',
        'S = r"""\nwhile :; do\n  sleep 1\n  date\ndone\n"""\n',
        'S = """\ncase $1 in\n  a) echo a ;;\n  *) echo b ;;\nesac\n"""\n',
    ],
)
def test_an_inline_script_is_found(source: str) -> None:
    assert inline_scripts(source), source


@pytest.mark.parametrize(
    "source",
    [
        # Prose, a docstring, a short command, a script that is only commands.
        'S = """If the disk holds data, then it is refused;\nelse it is used.\n\n\n"""\n',
        'def f() -> None:\n    """Runs it.\n\n    if it fails; then it says so\n'
        '    fi\n    done\n    """\n',
        'S = "systemctl is-active -q x || systemctl start x; systemctl is-active -q x"\n',
        'S = "a\\nb\\nif x; then y; fi\\n"\n',
    ],
)
def test_what_is_not_an_inline_script_passes(source: str) -> None:
    assert not inline_scripts(source), source
