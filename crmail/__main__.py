"""The ``crmail`` command's entry point (and ``python -m crmail``).

Kept to this one lazy import: worker processes started the "spawn" way (the sync's
parsing workers, the job worker's) import the main module again before their first task.
When it was ``crmail.config.cli``, each one imported every subcommand's module first, for
nothing (about 0.05 s of each worker's start, which a first sync's first batch waits for).
"""

from __future__ import annotations

import sys


def main() -> int:
    """Run the ``crmail`` command (``crmail.config.cli.main``) with the command line."""
    from crmail.config.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
