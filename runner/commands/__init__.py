"""One small module per subcommand: a function with explicit arguments returning an exit code."""
