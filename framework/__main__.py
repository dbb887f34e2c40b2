"""``python -m framework`` is the ``konnector`` command."""

from .cli import main

main(prog_name="konnector")
