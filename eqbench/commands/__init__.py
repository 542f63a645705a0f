"""CLI subcommands, one module each. A module defines NAME, HELP, EXAMPLES, add_arguments(parser)
and run(args) -> exit code. Add a new subcommand by adding its module name to MODULES."""

MODULES = ["run", "datasets", "methods", "report", "compare", "analyze", "train", "zoo"]
