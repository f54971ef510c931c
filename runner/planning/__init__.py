"""Stage 2, plan: Runbook + params + inventory -> Plan, a value to print, hash, save and load.

planner (build the plan), planned (the Plan), planfile (saved plans), approvals and planuse
(a saved plan's approvals and its one use, as the policy asks), checkmode (`plan --check`).

May import: format/, audit/ (a plan's approvals are sealed journals), execution's event kinds
(checkmode's report subscribes to a check run's events), runner.errors, runner.safefs.
"""
