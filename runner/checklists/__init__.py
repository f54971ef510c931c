"""Checklists: the model (reusing format/'s checks, durations and resolution), its periods
(definition), an instance's state derived from its journal (state), and sign-offs.

May import: format/, audit/ (journals, signatures), runner.errors.
"""
