"""``python -m harness.cli``: the ``edgebench`` command."""

from harness.cli import main

main()
