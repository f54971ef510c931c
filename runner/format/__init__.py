"""Stage 1, load and validate: the input formats, read into frozen values.

source (YAML with positions), schema (JSON Schema, with a validation cache: diskcache), model
(frozen dataclasses) built by construct, loader (find and load runbooks), semantics (the checks
after the schema), params, render (the Jinja sandbox, shell quoting, limits), redact (secrets
masked in one place), notify_spec, inventory (+ its sources, Ansible formats, host patterns).

May import: runner.errors, runner.safefs and itself; nothing of the stages after it.
"""
