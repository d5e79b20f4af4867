"""``python -m kgsched`` is the ``kgsched`` command (used to start child processes portably)."""

from kgsched.cli import main

main()
