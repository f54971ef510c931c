"""Thin adapters, one small module per subcommand: parse -> call the stages -> exit code. The
argument table (table, arguments, audit_arguments) builds the CLI (runner/cli.py).

May import anything below; nothing but cli.py imports them.
"""
