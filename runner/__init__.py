"""runbook: a declarative runbook interpreter."""

__version__ = "0.1.0"
