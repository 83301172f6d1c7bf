"""The subcommands of ``crmail``: each module registers its parsers and handlers."""
