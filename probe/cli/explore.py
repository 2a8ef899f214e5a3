"""`probe explore`: browse a results database in Datasette (optional extra `explore`)."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option


@cli.command("explore")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback: only this machine).")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True)
@click.option("--open", "open_browser", is_flag=True, help="Open a browser on the page.")
@click.option("--metadata-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Datasette metadata (JSON) here and exit.")
def explore_command(db: Path, host: str, port: int, open_browser: bool,
                    metadata_out: Path | None) -> None:
    """Browse the results database in Datasette: described tables, canned queries, readable bodies.

    Tables and columns carry their descriptions from docs/schema.md; canned queries answer
    what is blocked now, what is blocked at A but not at B, when a URL became blocked, and the
    technique mix per vantage point; body_text(body) and reason_words(code) make bodies and
    reasons readable in any SQL. Needs the optional extra: pip install 'censorship-probe[explore]'.

    \b
    Examples:
      probe explore                               # http://127.0.0.1:8001/
      probe explore --db results/all.db --port 8002
    """
    import json
    import sys
    import tempfile

    from probe.research.explore import PLUGINS_DIR, metadata
    from probe.store import Store, StoreError
    from probe.store.explore import relations

    shape = None
    if db.is_file():
        try:  # refuse what is not a probe database, and bring an old one to the current schema
            with Store.open(db, create=False) as store:
                shape = relations(store)  # what the file holds: its tables, views and columns
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
    meta = metadata(db.stem, relations=shape)
    if metadata_out is not None:
        from probe.host.output import check_output_file, replacing

        check_output_file(metadata_out, protect=[db])
        with replacing(metadata_out, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(meta, indent=2))
        return
    if not db.is_file():
        raise click.ClickException(f"{db}: no such database")
    try:
        import datasette  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "Datasette is not installed: pip install 'censorship-probe[explore]' (or pip install datasette)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="probe-explore-") as tmp:
        meta_path = Path(tmp) / "metadata.json"
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
        args = [sys.executable, "-m", "datasette", "serve", str(db), "--metadata", str(meta_path),
                "--plugins-dir", str(PLUGINS_DIR), "--host", host, "--port", str(port),
                "--setting", "sql_time_limit_ms", "10000"]
        if open_browser:
            args.append("--open")
        click.echo(f"Datasette on http://{host}:{port}/{db.stem} (Ctrl-C to stop)", err=True)
        code = _serve(args)
    if code not in (0, 130, -signal.SIGINT, -signal.SIGTERM):
        raise SystemExit(code)


def _serve(args: list[str]) -> int:
    """Run Datasette as a child and pass SIGTERM and SIGHUP on to it: stopping `probe explore`
    (systemd, a test, a closed terminal) must stop the server, never leave it listening."""
    import subprocess

    proc = subprocess.Popen(args)

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # Ctrl-C reached both; wait for Datasette to finish
                proc.send_signal(signal.SIGINT)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
