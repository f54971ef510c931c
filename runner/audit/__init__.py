"""Stage 4, record: the tamper-evident audit trail and what vouches for it.

journal (hash-chained JSONL), journalsink (the run's events into it) and groupcommit, ledger
(seals), integrity (verification), signing, identity and policy (who signed, who may), checkpoint,
report (runs for people) and reports/ (`audit report`: one document for an auditor), ship and
collected (records sent off the host), timespec.

May import: format/, execution's lifecycle (a run's state from its records) and event kinds
(the journal subscribes to them), checklists/ (an auditor's report covers them),
runner.errors, runner.safefs, runner.termsafe.
"""
