"""The ``konnector`` command.

Launched by a platform (``COZY_FIELDS`` set, or ``--log-format json``) it prints
only JSON log lines on stdout; on a terminal it prints readable lines. Bad
arguments and known errors give a one-line message and a non-zero exit, never
a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import export
from .entrypoints import COMMANDS_GROUP
from .errors import ConfigurationError, KonnectorError
from .launch import table_lines
from .store import DEFAULT_DATA_DIR, EMBEDDED_FILE

if TYPE_CHECKING:
    import ast

    from . import runner
    from .entrypoints import EntryPoint
    from .manifest import Manifest
    from .store import DocumentStore

# The runner (and with it requests, cryptography, the konnectors), the registry and jsonschema
# are imported inside the commands that use them, never here; entry points are read by
# framework.entrypoints, not importlib.metadata: `konnector --help` and `konnector list` must
# not pay for what a job needs (bench/cli_start.py measures it).

DEBUG_ENV = "KONNECTOR_DEBUG"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"


class Cli(click.Group):
    """A click group whose errors are one line on stderr, and that loads plugged-in commands lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugged_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in (plugged := _plugged_commands()):
            try:
                command = plugged[name].load()
            except Exception as error:  # a broken plug-in must not take the other commands down
                command = _unavailable(name, f"{plugged[name].value}: {type(error).__name__}: {error}")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a plugged-in command is described from its source, not imported:
        ``konnector --help`` must not import every konnector that ``demo`` brings along."""
        plugged = _plugged_commands()
        names = sorted({*super().list_commands(ctx), *plugged})
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            if name not in self.commands and (described := _described(plugged[name])) is not None:
                rows.append((name, click.Command(name, help=described).get_short_help_str(limit)))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        except click.ClickException as error:
            click.echo(f"error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except KonnectorError as error:
            click.echo(f"error: {error.message}", err=True)
            sys.exit(1)
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            click.echo(f"error: unexpected {type(error).__name__}: {error} (set {DEBUG_ENV}=1 for details)", err=True)
            sys.exit(1)


def _unavailable(name: str, reason: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(f"command '{name}' cannot be loaded ({reason})")

    return click.Command(name, callback=fail, help=f"(cannot be loaded: {reason})")


def _described(entry: EntryPoint) -> str | None:
    """A plugged-in command's help, read from its module's source without importing it.

    The help of a ``@click.command`` function is its ``help=`` argument or its docstring.
    None when the source cannot be read that way (the command is then loaded to ask it).
    """
    import ast

    from .entrypoints import source_of

    source = source_of(entry.module)
    tree = _parsed(source) if source else None
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry.attr:
            for decorator in node.decorator_list:
                if not (isinstance(decorator, ast.Call) and _decorator_name(decorator.func) in ("command", "group")):
                    continue
                for keyword in decorator.keywords:
                    if keyword.arg in ("help", "short_help") and isinstance(keyword.value, ast.Constant):
                        return str(keyword.value.value)
            return ast.get_docstring(node)
    return None


@functools.cache
def _parsed(source: str) -> ast.Module | None:
    """A module's syntax tree, parsed once however many commands it holds."""
    import ast

    try:
        return ast.parse(Path(source).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None


def _decorator_name(function: object) -> str:
    import ast

    if isinstance(function, ast.Attribute):
        return function.attr
    return function.id if isinstance(function, ast.Name) else ""


def _plugged_commands() -> dict[str, EntryPoint]:
    from .entrypoints import entry_points

    return {entry.name: entry for entry in entry_points(COMMANDS_GROUP)}


@click.group(cls=Cli)
@click.version_option(package_name="konnectors")
def main() -> None:
    """Run konnectors: collect a person's data from providers into their store."""


@main.command("list")
def list_konnectors() -> None:
    """List every konnector found (built-in, KONNECTOR_PATH, installed packages)."""
    from .registry import Registry

    rows = [(m.slug, m.name, m.version, m.source) for m in Registry.discover()]
    _table(("SLUG", "NAME", "VERSION", "SOURCE"), rows)


@main.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: fields and parameters as JSON Schema.")
def info(slug: str, as_json: bool) -> None:
    """Show one konnector's manifest: fields, parameters, doctypes, permissions, source."""
    from .manifest import is_required
    from .registry import Registry

    manifest = Registry.discover().get(slug)
    if as_json:
        click.echo(json.dumps(describe(manifest), indent=2, ensure_ascii=False))
        return
    click.echo(f"{manifest.name} ({manifest.slug} {manifest.version})")
    click.echo(f"source: {manifest.source}")
    click.echo(f"entrypoint: {manifest.entrypoint}")
    click.echo("fields:")
    for name, spec in manifest.fields.items():
        required = "required" if is_required(spec) else "optional"
        click.echo(f"  {name}: {spec['type']}, {required}")
    if manifest.parameters:
        click.echo("parameters:")
        for name, spec in manifest.parameters.items():
            default = f", default {json.dumps(spec['default'])}" if "default" in spec else ""
            click.echo(f"  {name}: {spec['type']}{default}")
    click.echo("permissions:")
    for permission in manifest.data["permissions"].values():
        verbs = ",".join(permission.get("verbs", ["ALL"]))
        click.echo(f"  {permission['type']} ({verbs})")


def describe(manifest: Manifest) -> dict:
    """A konnector for machines (Airbyte ``spec``, Singer ``--about``): what it needs and what it writes."""
    from .manifest import fields_schema, parameters_schema

    secret = manifest.secret_fields()
    fields = fields_schema(manifest.fields)
    for name, schema in fields["properties"].items():
        spec = manifest.fields[name]
        schema.update({k: spec[k] for k in ("default", "description") if k in spec})
        if "label" in spec:
            schema["title"] = spec["label"]
        if name in secret:
            schema["writeOnly"] = True
    return {
        "slug": manifest.slug,
        "name": manifest.name,
        "version": manifest.version,
        "source": manifest.source,
        "description": manifest.data.get("locales", {}).get("en", {}).get("short_description", ""),
        "fields": {"$schema": JSON_SCHEMA, **fields},
        "parameters": {"$schema": JSON_SCHEMA, **parameters_schema(manifest.parameters)},
        "doctypes": sorted(manifest.doctypes),
        "permissions": manifest.data["permissions"],
        "sandbox": "sandbox" in manifest.data,
    }


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Validate manifest files (default: every konnector found)."""
    from .manifest import load_file
    from .registry import Registry

    if not paths:
        count = len(Registry.discover())
        click.echo(f"{count} manifests valid")
        return
    failed = 0
    for path in paths:
        try:
            manifest = load_file(path)
        except ConfigurationError as error:
            failed += 1
            click.echo(error.message, err=True)
        else:
            click.echo(f"{path}: ok ({manifest.slug} {manifest.version})")
    if failed:
        raise click.ClickException(f"{failed} of {len(paths)} manifests invalid")


def _job_options(command):
    options = [
        click.option("--config", type=click.Path(path_type=Path), help="Standalone: a dev-config JSON file."),
        click.option("--account", "account_id", help="Account id (standalone default: <slug>-dev)."),
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path),
            default=DEFAULT_DATA_DIR,
            show_default=True,
            help="Standalone: where the embedded store and key file live.",
        ),
        click.option("--couchdb", "couchdb_url", help="Standalone: write to this CouchDB instead."),
        click.option("--log-format", type=click.Choice(["json", "human"]), help="Default: json under a platform."),
        click.option("--debug", is_flag=True, help="Log debug lines too."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@click.argument("slug", required=False)
@_job_options
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Re-collect from this date (YYYY-MM-DD).")
@click.option("--full-refresh", is_flag=True, help="Re-collect everything: forget the bookmark.")
@click.option("--dry-run", is_flag=True, help="Fetch and process, write nothing; print what would be stored.")
@click.option("--dump", type=click.Path(dir_okay=False, path_type=Path), help="With --dry-run: write it here.")
def run(slug, config, account_id, data_dir, couchdb_url, log_format, debug, since, full_refresh, dry_run, dump) -> None:
    """Run a konnector job (platform mode when COZY_FIELDS is set)."""
    if dump and not dry_run:
        raise click.UsageError("--dump goes with --dry-run")
    if since and full_refresh:
        raise click.UsageError("--since and --full-refresh: choose one")
    extra = {"since": since and since.date(), "full_refresh": full_refresh, "dry_run": dry_run}
    _job(slug, config, account_id, data_dir, couchdb_url, log_format, debug, extra, dump)


@main.command()
@click.argument("slug", required=False)
@_job_options
def check(slug, config, account_id, data_dir, couchdb_url, log_format, debug) -> None:
    """Test the credentials and the provider's reachability without collecting (exit 1 with the error code)."""
    _job(slug, config, account_id, data_dir, couchdb_url, log_format, debug, {"check": True})


@main.command("delete-account")
@click.argument("slug", required=False)
@_job_options
def delete_account(slug, config, account_id, data_dir, couchdb_url, log_format, debug) -> None:
    """Revoke the account's consent at the provider, then delete the account."""
    _job(slug, config, account_id, data_dir, couchdb_url, log_format, debug, {"delete": True})


def _job(slug, config, account_id, data_dir, couchdb_url, log_format, debug, extra, dump=None) -> None:
    import logging

    from . import logs, runner
    from .redact import Redactor
    from .registry import Registry

    runner.stop_on_signals()
    platform = "COZY_FIELDS" in os.environ
    redactor = Redactor()
    log_format = log_format or ("json" if platform else "human")
    logs.configure(log_format, redactor, logging.DEBUG if debug else logging.INFO)
    try:
        spec = _spec(slug, config, account_id, data_dir, couchdb_url, platform)
        for name, value in extra.items():
            setattr(spec, name, getattr(spec, name) or value)
        manifest = Registry.discover().get(spec.slug)
    except (KonnectorError, runner.Interrupted) as failure:
        error = failure.error() if isinstance(failure, runner.Interrupted) else failure
        if log_format == "human":
            raise error from None
        with runner.ignoring_signals():
            sys.exit(runner.report_failure(logs.get_logger(slug or "runner"), error))
    result = runner.run(spec, manifest, redactor, _progress(log_format, spec.slug))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the job has reported: nothing may add a second report
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if result.dry_run is not None:
        try:
            for line in result.dry_run.lines():
                click.echo(line, err=log_format == "json")
            if dump and result.error is None:
                result.dry_run.dump(dump)
                click.echo(f"written to {dump} (Cozy's importedData.json shape)", err=True)
        finally:
            result.dry_run.close()
    sys.exit(result.status)


def _progress(log_format: str, slug: str):
    """Counts per doctype as the job stores: redrawn on a terminal, JSON lines for a platform, else none."""
    from . import logs

    if log_format == "json":
        return logs.ProgressLines(logs.get_logger(f"{slug}.progress"))
    return logs.Progress(sys.stderr) if sys.stderr.isatty() else None


def _spec(slug, config, account_id, data_dir, couchdb_url, platform) -> runner.JobSpec:
    from . import runner

    if platform:
        return runner.spec_from_environment(dict(os.environ), slug)
    if not slug:
        raise click.UsageError("give the konnector's SLUG (see: konnector list)")
    if not config and not couchdb_url and not (data_dir / EMBEDDED_FILE).exists():
        raise ConfigurationError(
            f"no account '{account_id or slug + '-dev'}' to use: there is no store in {data_dir}; "
            "give --config FILE (a dev-config with the account's fields, see dev-config.example.json)"
        )
    dev_config = runner.read_dev_config(config) if config else {}
    for warning in _unknown_config_keys(dev_config):
        click.echo(f"warning: {config}: {warning}", err=True)
    return runner.JobSpec(
        slug=slug,
        account_id=account_id or dev_config.get("account") or f"{slug}-dev",
        parameters=dev_config.get("parameters", {}),
        fields=dev_config.get("fields", {}) if config else None,
        couchdb_url=couchdb_url,
        prefix=os.environ.get("KONNECTOR_DB_PREFIX", ""),
        data_dir=data_dir,
        oauth=dev_config.get("oauth"),
        oauth_callback_results=dev_config.get("oauth_callback_results"),
        now=runner.fixed_now(dict(os.environ)),
    )


DEV_CONFIG_KEYS = ("fields", "parameters", "account", "oauth", "oauth_callback_results")


def _unknown_config_keys(config: dict) -> list[str]:
    from .manifest import unknown_key_warning

    return [unknown_key_warning("key", key, DEV_CONFIG_KEYS) for key in config if key not in DEV_CONFIG_KEYS]


@main.command()
@click.argument("slug")
@click.option("--config", type=click.Path(path_type=Path), required=True, help="A dev-config JSON file.")
@click.option("--account", "account_id", help="Account id (default: <slug>-dev).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--couchdb", "couchdb_url", help="Store in this CouchDB instead.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True)
@click.option("--path", default="/notify", show_default=True, help="Where the provider posts.")
@click.option("--cert", "certfile", type=click.Path(exists=True), help="TLS certificate (PEM) of this endpoint.")
@click.option("--key", "keyfile", type=click.Path(exists=True), help="Its private key (PEM).")
@click.option("--client-ca", type=click.Path(exists=True), help="Accept only clients certified by this CA.")
@click.option(
    "--client-subject", multiple=True, help="…and named so in their certificate (SAN or CN); required with --client-ca."
)
@click.option("--no-worker", is_flag=True, help="Only accept and store notifications; `konnector run` handles them.")
@click.option("--log-format", type=click.Choice(["json", "human"]), default="human")
def serve(
    slug,
    config,
    account_id,
    data_dir,
    couchdb_url,
    host,
    port,
    path,
    certfile,
    keyfile,
    client_ca,
    client_subject,
    no_worker,
    log_format,
) -> None:
    """Receive a provider's notifications over HTTPS and handle them."""
    from . import logs, runner
    from .redact import Redactor
    from .registry import Registry

    if bool(certfile) != bool(keyfile):
        raise click.UsageError("--cert and --key go together")
    redactor = Redactor()
    logs.configure(log_format, redactor)
    spec = _spec(slug, config, account_id, data_dir, couchdb_url, platform=False)
    manifest = Registry.discover().get(slug)
    from .receiver import subject_names

    subjects = subject_names(client_subject)
    options = runner.ServeOptions(
        host, port, path, certfile, keyfile, client_ca, worker=not no_worker, client_subject=subjects
    )
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(runner.serve(spec, manifest, redactor, options))


def _interrupt(*_: object) -> None:
    """SIGTERM stops a long-running command the way Ctrl-C does."""
    raise KeyboardInterrupt


@main.command()
@click.argument("slug")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Default: a free port.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic data.")
@click.option(
    "--set", "settings", multiple=True, metavar="NAME=VALUE", help="Set a sandbox attribute (see its docstring)."
)
def sandbox(slug: str, port: int, seed: int, settings: tuple[str, ...]) -> None:
    """Run a konnector's sandbox on 127.0.0.1 until stopped; print a dev-config for it."""
    from .registry import Registry, load_class

    manifest = Registry.discover().get(slug)
    sandbox_class = load_class(manifest, "sandbox")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with sandbox_class(seed=seed, port=port) as running:
        for setting in settings:
            _set_attribute(running, setting)
        click.echo(json.dumps(running.dev_config(), indent=2))
        click.echo(f"{slug} sandbox listening on {running.url}; Ctrl-C to stop", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)


def _set_attribute(target: object, setting: str) -> None:
    """``NAME=VALUE`` on an existing public attribute, the value converted to the attribute's type."""
    name, _, value = setting.partition("=")
    current = getattr(target, name, None) if name and not name.startswith("_") and hasattr(target, name) else None
    if not name or name.startswith("_") or not hasattr(target, name) or callable(current):
        raise click.UsageError(f"--set {setting!r}: the sandbox has no attribute {name!r}")
    if isinstance(current, bool):
        setattr(target, name, value.lower() in ("1", "true", "yes"))
    elif isinstance(current, int | float):
        setattr(target, name, type(current)(value))
    else:
        setattr(target, name, value)


@main.command()
@click.argument("slug")
@click.option(
    "--directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), help="Where to create it."
)
def new(slug: str, directory: Path) -> None:
    """Create a third-party konnector distribution: manifest, konnector, sandbox, tests."""
    from . import scaffold

    target = scaffold.create(slug, directory)
    click.echo(f"created {target}")
    click.echo(f"next: cd {target} && pip install -e '.[test]' && pytest")


@main.command("export")
@click.argument("doctype")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--couchdb", "couchdb_url", help="Read this CouchDB instead of the embedded store.")
@click.option("--format", "fmt", type=click.Choice(export.FORMATS), default="json", show_default=True)
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First date kept (YYYY-MM-DD).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last date kept (YYYY-MM-DD).")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", help="Default: standard output.")
def export_command(doctype, data_dir, couchdb_url, fmt, start, end, output) -> None:
    """Write a doctype's documents (json, ndjson, csv, or Cozy's importedData shape)."""
    from . import inventory
    from .registry import Registry

    store = open_store(couchdb_url, data_dir)
    if next(store.id_range(doctype), None) is None:
        inventory.require_known(doctype, inventory.known_doctypes(Registry.discover()))
    count = export.export(store, doctype, fmt, output, start and start.date(), end and end.date())
    click.echo(f"{count} {doctype} documents exported", err=True)


def open_store(couchdb_url: str | None, data_dir: Path) -> DocumentStore:
    """The store a command reads: CouchDB if a URL is given, else an existing embedded store."""
    from .store import DocumentStore, open_backend

    if not couchdb_url and not (data_dir / EMBEDDED_FILE).exists():
        raise click.UsageError(f"no store in {data_dir}: run a konnector first, or give --data-dir or --couchdb")
    return DocumentStore(open_backend(couchdb_url, data_dir, os.environ.get("KONNECTOR_DB_PREFIX", "")))


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True)
@click.option("--couchdb", "couchdb_url", help="Read this CouchDB instead of the embedded store.")
def doctypes(data_dir: Path, couchdb_url: str | None) -> None:
    """List the doctypes a store holds, with document counts and the dates they cover."""
    from . import inventory
    from .registry import Registry

    store = open_store(couchdb_url, data_dir)
    found = inventory.holdings(store, inventory.known_doctypes(Registry.discover()))
    if not found:
        click.echo("the store holds no document yet", err=True)
        return
    rows = [(h.doctype, str(h.count), str(h.first or "-"), str(h.last or "-")) for h in found]
    _table(("DOCTYPE", "DOCUMENTS", "FROM", "TO"), rows)


@main.group()
def state() -> None:
    """Show or reset an account's state: its bookmark, and what the konnector keeps between runs."""


def _state_options(command):
    for option in reversed(
        [
            click.argument("slug"),
            click.option("--account", "account_id", help="Account id (default: <slug>-dev)."),
            click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True),
            click.option("--couchdb", "couchdb_url", help="Read this CouchDB instead of the embedded store."),
        ]
    ):
        command = option(command)
    return command


def _account_of(slug, account_id, data_dir, couchdb_url):
    from .accounts import AccountStore
    from .crypto import SecretBox, load_key
    from .registry import Registry

    manifest = Registry.discover().get(slug)
    store = open_store(couchdb_url, data_dir)
    accounts = AccountStore(store, SecretBox(load_key(None if couchdb_url else data_dir)))
    account = accounts.find(account_id or f"{slug}-dev")
    if account is None:
        raise click.ClickException(f"no account '{account_id or slug + '-dev'}' in this store (see --account)")
    if account.slug != slug:
        raise click.ClickException(f"account '{account.id}' belongs to konnector '{account.slug}', not '{slug}'")
    return manifest, accounts, account


@state.command("show")
@_state_options
def state_show(slug, account_id, data_dir, couchdb_url) -> None:
    """Print the account's state as JSON (secrets are listed by name only)."""
    _, _, account = _account_of(slug, account_id, data_dir, couchdb_url)
    shown = {"account": account.id, "state": account.state, "secrets": sorted(account.secrets)}
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False, default=str))


@state.command("reset")
@_state_options
def state_reset(slug, account_id, data_dir, couchdb_url) -> None:
    """Forget the bookmark and kept state: the next run collects everything again (tokens are kept)."""
    manifest, accounts, account = _account_of(slug, account_id, data_dir, couchdb_url)
    forgotten = sorted(key for key in account.state if key not in KEPT_STATE)
    account.state = {key: value for key, value in account.state.items() if key in KEPT_STATE}
    accounts.save(account, manifest.secret_fields())
    click.echo(f"state of {account.id} reset (forgot: {', '.join(forgotten) or 'nothing'})")


KEPT_STATE = ("rate_limits",)
"""State a reset keeps: the provider's quota spent does not come back with a reset."""


@main.command()
def keygen() -> None:
    """Print a new key for KONNECTOR_SECRET_KEY."""
    from .crypto import new_key

    click.echo(new_key())


def _table(header: tuple[str, ...], rows: list[tuple]) -> None:
    for line in table_lines(header, rows):
        click.echo(line)
