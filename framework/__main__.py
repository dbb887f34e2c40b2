"""``python -m framework`` is the ``konnector`` command."""

import sys

from .launch import main

sys.exit(main(prog_name="konnector"))
