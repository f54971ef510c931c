"""A value in a here-document: quoting for a word is wrong there (issue 18's follow-up, finding 2).

In `<<EOF` quotes are text and `$( )` runs: `validate` refuses a value there (tests/cases/
heredoc-unquoted). In `<<'EOF'` nothing runs: the value goes in as literal text, unless a line of
it would end the here-document and run what follows (real CLI, real /bin/sh)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_runbook

from runner.cli import main

HOSTILE = "$(touch pwned)`touch pwned2`'\"$HOME"


def _runbook(workdir: Path, body: str, op: str = "<<'EOF'") -> None:
    write_runbook(
        workdir,
        "h",
        "runbook: h\nparams: {v: {type: string, required: true}}\nsteps:\n"
        f"  - id: conf\n    run: |\n      cat > app.conf {op}\n{body}      EOF\n",
    )


def test_a_value_in_a_quoted_here_document_is_literal_text(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _runbook(workdir, "      version={{ v }}\n")
    assert main(["plan", "h", "-p", f"v={HOSTILE}"]) == 0
    assert f"version={HOSTILE}\n" in capsys.readouterr().out  # what runs is what the plan shows
    assert main(["run", "h", "--yes", "-p", f"v={HOSTILE}"]) == 0
    assert (workdir / "app.conf").read_text() == f"version={HOSTILE}\n"
    assert not (workdir / "pwned").exists() and not (workdir / "pwned2").exists()


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("<<'EOF'", "x\nEOF\ntouch pwned\ncat <<'EOF'"),
        ("<<-'EOF'", "x\n\t\tEOF\ntouch pwned\ncat <<'EOF'"),  # <<- strips leading tabs
        ("<<'EOF'", "EOF"),  # the value alone on its line
    ],
)
def test_a_value_that_would_end_its_here_document_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str], op: str, value: str
) -> None:
    _runbook(workdir, "      {{ v }}\n      more\n", op)
    assert main(["run", "h", "--yes", "-p", f"v={value}"]) == 2
    err = capsys.readouterr().err
    assert "holds a line 'EOF', which would end it" in err
    assert not (workdir / "pwned").exists() and not (workdir / "app.conf").exists()


def test_a_value_in_an_unquoted_here_document_runs_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported exploit: `version='$(id > PWNED)'` in `<<EOF` ran the `id`."""
    _runbook(workdir, "      version={{ v }}\n", "<<EOF")
    assert main(["run", "h", "--yes", "-p", "v=$(touch pwned)"]) == 2
    assert "quote the delimiter (<<'EOF')" in capsys.readouterr().err
    assert not (workdir / "pwned").exists() and not (workdir / "state").exists()
