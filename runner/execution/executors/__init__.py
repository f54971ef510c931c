"""Executors run one shell command on one host; everything else lives in the engine.

base (the Executor contract and the result types), local, ssh (with connecting, hostkeys,
session, channel, and the per-host helper: helper, remote_helper), pool (one executor per
host), tunnel.

May import: format/ (a host of the inventory), runner.errors and itself.
"""
