"""``konnector build``: what ``cozy-stack konnectors install SLUG file://DIR`` takes, and the stack's runner script.

The stack installs a konnector from a directory holding ``manifest.konnector``
(``docs/konnectors-dev.md``), copies its files into a fresh work directory for each job
and runs ``konnectors.cmd <work dir>`` (``<work dir>/<on_delete_account>`` for a deletion)
with only the ``COZY_*`` variables set (``worker/exec/common.go``, ``cmd_unix.go``). So:

- ``DIR/manifest.konnector``: our manifest in the stack's terms (:mod:`.manifest`);
- ``DIR/index.py``: the entry, for jobs and deletions alike (``COZY_FIELDS`` says which);
  it runs ``konnector run SLUG`` with the Python that has this framework installed;
- ``DIR/konnector/``: for a konnector found through ``KONNECTOR_PATH``, its manifest and
  module, put back on ``KONNECTOR_PATH`` by the entry (installed packages need nothing);
- the runner script (``konnectors.cmd`` in ``cozy.yaml``): runs ``index.py`` with our
  Python when ``COZY_LANGUAGE`` is ``python`` and hands anything else to the stack's Node
  runner, so one stack runs both kinds.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

from ..errors import ConfigurationError
from ..manifest import Manifest
from .manifest import ENTRY, stack_manifest

BUNDLE = "konnector"

_ENTRY_TEMPLATE = '''"""What cozy-stack runs for the konnector {slug!r} (written by `konnector build`).

The stack starts it in the job's work directory with only the COZY_* variables set;
a job and an account deletion (COZY_FIELDS.account_deleted) both come here.
"""

import os
from pathlib import Path

bundled = Path(__file__).resolve().parent / "{bundle}"
if bundled.is_dir():
    os.environ["KONNECTOR_PATH"] = str(bundled)

from framework.cli import main  # noqa: E402 - KONNECTOR_PATH must be set first

main(["run", {slug!r}])
'''

_RUNNER_TEMPLATE = """#!/bin/sh
# konnectors.cmd for cozy-stack, written by `konnector stack-runner`.
# The stack runs: <this script> <work dir, or the on_delete_account file in it>,
# from the work dir, with only the COZY_* variables set (no PATH).
# Python konnectors (COZY_LANGUAGE=python) run with {python};
# the others go to the stack's Node runner: {node}.
arg="$1"
if [ ! -e "$arg" ]; then
  echo "$arg does not exist" >&2
  exit 1
fi
if [ "$COZY_LANGUAGE" != "python" ]; then
  exec {node_command} "$arg"
fi
if [ -d "$arg" ]; then
  entry="$arg/{entry}"
else
  entry="$arg"
fi
cd "$(dirname "$entry")" || exit 1
exec {python} "$entry"
"""

_NODE_FALLBACK = '"$(command -v nodejs || command -v node)"'


def build(manifest: Manifest, out: Path) -> Path:
    """Write the installable directory for ``manifest`` into ``out``; return ``out``."""
    stack = stack_manifest(manifest.data)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise ConfigurationError(f"{out} is not empty: build into a new directory")
    (out / "manifest.konnector").write_text(json.dumps(stack, indent=2, ensure_ascii=False) + "\n")
    (out / ENTRY).write_text(_ENTRY_TEMPLATE.format(slug=manifest.slug, bundle=BUNDLE))
    if manifest.search_path:
        _bundle(manifest, out / BUNDLE)
    return out


def _bundle(manifest: Manifest, target: Path) -> None:
    """A ``KONNECTOR_PATH`` konnector's manifest and top module, as that directory holds them."""
    source = Path(manifest.search_path or "")
    top = manifest.entrypoint.split(":")[0].split(".")[0]
    target.mkdir()
    shutil.copyfile(source / f"{manifest.slug}.json", target / f"{manifest.slug}.json")
    if (source / top).is_dir():
        shutil.copytree(source / top, target / top, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copyfile(source / f"{top}.py", target / f"{top}.py")


def write_runner(path: Path, python: str | None = None, node_runner: str | None = None) -> Path:
    """The ``konnectors.cmd`` script, executable; ``python`` defaults to this interpreter."""
    python = python or sys.executable
    node_command = shlex.quote(node_runner) if node_runner else _NODE_FALLBACK
    text = _RUNNER_TEMPLATE.format(
        python=shlex.quote(python),
        node=node_runner or "node itself (no --node-runner given)",
        node_command=node_command,
        entry=ENTRY,
    )
    path.write_text(text)
    path.chmod(0o755)
    return path
