"""Stage 3, execute: a Plan run across its hosts, emitting events.

engine (hosts, batches, the failure policy) and rollout (between batches), steps (one host's
steps) with prompts, attempts (an action with retries), actions (run/http/notify), calls,
manual, undo; interrupts, lifecycle (a run's states), resume_state (where a run stopped),
locks; events (the bus) and the event kinds (eventkinds, stepevents); executors/ (one contract:
local, ssh).

May import: format/, planning/, audit/ (where a run's journal is, who acts), runner.errors,
runner.safefs. The console and the journal subscribe to its events; it imports neither the
console nor commands.
"""
