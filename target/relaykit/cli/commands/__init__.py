"""The implementations of `setup` subcommands, one module per feature (as DMS has)."""
