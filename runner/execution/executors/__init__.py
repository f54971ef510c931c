"""Executors run one shell command on one host; everything else lives in the engine."""
