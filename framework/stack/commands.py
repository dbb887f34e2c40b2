"""The ``konnector build`` and ``konnector stack-runner`` commands (plugged in through ``konnector.commands``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..registry import Registry
from .build import build as build_directory
from .build import write_runner


@click.command()
@click.argument("slug")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="A new directory to write.")
def build(slug: str, out: Path) -> None:
    """Write what `cozy-stack konnectors install SLUG file://OUT` installs."""
    manifest = Registry.discover().get(slug)
    directory = build_directory(manifest, out)
    click.echo(f"built {slug} in {directory}; install it with:")
    click.echo(f"  cozy-stack konnectors install {slug} file://{directory.resolve()}")


@click.command("stack-runner")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--node-runner", help="The stack's runner for Node konnectors (e.g. scripts/konnector-node-run.sh).")
def stack_runner(path: Path, node_runner: str | None) -> None:
    """Write the script to set as `konnectors.cmd` in cozy.yaml (Python konnectors, and Node ones)."""
    write_runner(path, node_runner=node_runner)
    click.echo(f"wrote {path}; in cozy.yaml:\n  konnectors:\n    cmd: {path.resolve()}")
