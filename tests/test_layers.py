"""The package tree reads as the pipeline, and its imports point one way (STYLE.md):

    cli, console  ->  commands  ->  planning / execution / audit / checklists  ->  format

Nothing below `commands/` imports `commands`, `cli` or `console` (the console subscribes to
events; it is never called from below), and `format/` (reading and validating input) imports
nothing of the stages after it. `errors.py` and `safefs.py` are for everyone. No two modules
share a name, so that a name says where a module is. An AST walk over runner/ keeps this true.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from conftest import REPO

RUNNER = REPO / "runner"
TOP = ("runner.cli", "runner.console", "runner.commands", "runner.__main__")
STAGES = ("planning", "execution", "audit", "checklists")


def module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, dotted name) of every runner import in `path`, at any depth in the file; for
    `from a import b` the name is `a.b` (b may be a module of package a)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("runner")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            if within(base, "runner"):
                # `from runner.x import y`: y may be a module of runner.x, or a name in it
                out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def modules() -> list[Path]:
    return sorted(RUNNER.rglob("*.py"))


def test_nothing_below_commands_imports_commands_cli_or_console() -> None:
    wrong = [
        f"{p.relative_to(REPO)}:{line}: imports {name}"
        for p in modules()
        if not within(module_name(p), *TOP)
        for line, name in imports(p)
        if within(name, *TOP)
    ]
    assert wrong == []


def test_format_imports_nothing_of_the_stages_after_it() -> None:
    later = tuple(f"runner.{s}" for s in STAGES)
    wrong = [
        f"{p.relative_to(REPO)}:{line}: imports {name}"
        for p in sorted((RUNNER / "format").rglob("*.py"))
        for line, name in imports(p)
        if within(name, *TOP, *later)
    ]
    assert wrong == []


def test_executors_import_only_the_format_and_themselves() -> None:
    """The executor contract is small: an executor knows its host, never the engine."""
    allowed = ("runner.execution.executors", "runner.format", "runner.errors")
    executors = RUNNER / "execution" / "executors"
    wrong = [
        f"{p.relative_to(REPO)}:{line}: imports {name}"
        for p in sorted(executors.rglob("*.py"))
        for line, name in imports(p)
        if not within(name, *allowed)
    ]
    assert executors.is_dir() and wrong == []


def test_each_stage_is_a_package_that_says_what_it_owns_and_may_import() -> None:
    for name in ("format", *STAGES, "commands", "execution/executors"):
        init = RUNNER / name / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, (
            f"{init.relative_to(REPO)}: no docstring saying what it may import"
        )


def test_no_two_modules_share_a_name() -> None:
    names = Counter(p.stem for p in modules() if p.stem not in ("__init__", "__main__"))
    assert [n for n, count in names.items() if count > 1] == []


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checks above cannot pass by not seeing an import: plain, from, late and relative."""
    package = tmp_path / "runner" / "execution"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    probe = package / "probe.py"
    probe.write_text(
        "import runner.console\n"
        "from runner import cli, errors\n"
        "def late() -> None:\n"
        "    from runner.commands.run import run\n"
        "from ..format import model\n"
        "from . import engine\n"
    )
    found = sorted(name for _, name in imports(probe, tmp_path))
    assert found == [
        "runner.cli",
        "runner.commands.run.run",
        "runner.console",
        "runner.errors",
        "runner.execution.engine",
        "runner.format.model",
    ]
