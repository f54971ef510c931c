"""`runbook import`: a Markdown runbook becomes YAML runbooks and checklists, and stays in step.

document (Markdown -> sections) -> shell (a fence -> commands and steps) -> lift (repeated
paths and hosts -> variables) -> build (sections -> runbooks, checklists, the report) -> emit
(files with their source headers; `--check`).

May import: runner.errors and itself (what it writes is validated by `runbook validate`).
"""
