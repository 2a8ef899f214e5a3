"""`probe export`: results in formats other tools read (CSV, JSON lines, OONI, Parquet)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option, since_option
from probe.host.output import check_output_file, replacing

_FORMATS = ("csv", "jsonl", "ooni", "parquet")


def _write_stream(chunks: Iterator[str], output: Path | None) -> int:
    """Write text chunks to ``output`` (atomically: probe/host/output.py) or stdout."""
    n = 0
    if output is None:
        try:
            for chunk in chunks:
                sys.stdout.write(chunk)
                n += chunk.count("\n")
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader stopped (`| head`): not an error. Point stdout at /dev/null so that
            # the interpreter's final flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return n
    with replacing(output, "w", encoding="utf-8", newline="") as fh:
        for chunk in chunks:
            fh.write(chunk)
            n += chunk.count("\n")
    return n


@cli.command("export")
@db_option
@click.option("--format", "fmt", type=click.Choice(_FORMATS), required=True,
              help="csv: one row per measurement; jsonl: measurements with every observation; "
                   "ooni: OONI Web Connectivity measurements, one per line; parquet: a "
                   "directory with one file per table (needs pyarrow).")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Output file (directory for parquet). Default: standard output.")
@click.option("--vantage", "vantages", multiple=True, metavar="NAME[,NAME...]",
              help="Only these vantage points (repeatable).")
@click.option("--run", "run", metavar="ID|latest", help="Only this run.")
@since_option("Only measurements since then (2026-11-20, 2026-11-20T10:00, 7d).")
@click.option("--all-attempts", is_flag=True,
              help="Every attempt, retries included (default: the final attempt of each URL).")
@click.option("--observations", is_flag=True,
              help="parquet: also observations.parquet (the full observations JSON; large).")
@click.option("--force", is_flag=True,
              help="parquet: write into a directory that holds other files too (they are left "
                   "as they are; nothing is ever deleted).")
@click.option("--dns-replies", is_flag=True,
              help="parquet: also dns_replies.parquet (every reply: answers, TTL, flags, bytes).")
@click.option("--certificates", "certs", is_flag=True,
              help="parquet: also certificates.parquet (every certificate the handshakes got).")
@click.option("--partition-by", "partition_by", metavar="KEY[,KEY...]",
              help="parquet: a hive-style dataset partitioned by country (the run's), date "
                   "(UTC) and/or vantage, which exports of other databases extend: only this "
                   "database's files are replaced.")
@click.option("--stability", "stability_runs", type=click.IntRange(min=1), default=10,
              show_default=True, metavar="N",
              help="parquet: stability.parquet counts, per vantage point and URL, how many of the "
                   "last N runs agree with the latest verdict.")
@click.option("--suite", type=click.Choice(["web", "circumvention", "messaging"]), default="web",
              show_default=True,
              help="web: URL measurements (`probe run`); circumvention: endpoint measurements "
              "(`probe circumvention`: Tor, VPN protocols, encrypted DNS); messaging: Telegram, "
              "WhatsApp and Signal (`probe messaging`); csv or jsonl.")
def export_command(db: Path, fmt: str, output: Path | None, vantages: tuple[str, ...],
                   run: str | None, since: str | None, all_attempts: bool,
                   observations: bool, force: bool, dns_replies: bool, certs: bool,
                   partition_by: str | None, stability_runs: int, suite: str) -> None:
    """Export results for other tools, streaming (memory stays flat however big the database).

    Rows are named by global ids (measurement_uid, run_uid, vantage_uid), so exports of several
    databases can be read together. See docs/research.md for DuckDB and ClickHouse queries.

    \b
    Examples:
      probe export --format csv -o results.csv
      probe export --format ooni --vantage moscow > moscow.jsonl
      probe export --db all.db --format parquet -o all-parquet/
      probe export --format parquet --partition-by country,date -o dataset/
      probe export --suite circumvention --format jsonl -o endpoints.jsonl
      probe export --suite messaging --format csv -o apps.csv
    """
    from probe.research import compare as cmp
    from probe.research.export import Filters, csv_lines, jsonl_lines
    from probe.research.ooni.export import ooni_lines
    from probe.store import Store

    since_iso = since  # made ISO by the option's callback
    if run is not None and run != "latest" and not run.isdigit():
        raise click.BadParameter(f"expected a run id or 'latest', not {run!r}", param_hint="--run")
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a directory: give it with --output DIR")
    if suite != "web" and fmt not in ("csv", "jsonl"):
        raise click.UsageError(f"--suite {suite} exports csv or jsonl")
    if observations and fmt != "parquet":
        raise click.UsageError("--observations is for --format parquet (jsonl always has them)")
    if force and fmt != "parquet":
        raise click.UsageError("--force is for --format parquet (a file is replaced atomically)")
    if output is not None and fmt != "parquet":
        check_output_file(output, protect=[db])
    parquet_only = [flag for flag, on in (("--dns-replies", dns_replies), ("--certificates", certs),
                                          ("--partition-by", partition_by)) if on]
    if parquet_only and fmt != "parquet":
        raise click.UsageError(f"{', '.join(parquet_only)}: for --format parquet only")
    partitions: tuple[str, ...] = ()
    if partition_by:
        partitions = tuple(p.strip() for p in partition_by.split(",") if p.strip())
        bad = [p for p in partitions if p not in ("country", "date", "vantage")]
        if bad or not partitions or len(set(partitions)) != len(partitions):
            raise click.BadParameter(
                f"{partition_by!r}: a comma-separated list of country, date, vantage",
                param_hint="--partition-by")
    try:
        with Store.open(db, create=False) as store:
            names = cmp.split_list(vantages)
            known = store.vantage_ids()
            unknown = [n for n in names if n not in known]
            if unknown:
                raise click.BadParameter(
                    f"no vantage point {', '.join(unknown)} in {db} (known: {', '.join(known)})",
                    param_hint="--vantage")
            run_id = store.resolve_run(run) if run is not None else None
            f = Filters(tuple(names), run_id, since_iso, all_attempts)
            if fmt == "parquet":
                assert output is not None
                from probe.research.export.parquet import write_parquet

                counts = write_parquet(store, output, f, observations=observations,
                                       dns_replies=dns_replies, certificates=certs,
                                       partition_by=partitions, stability_runs=stability_runs,
                                       force=force)
                click.echo(f"{output}: " + ", ".join(f"{t} {n}" for t, n in counts.items()),
                           err=True)
                return
            if suite != "web":
                from probe.research.export.endpoints import endpoint_csv_lines, endpoint_jsonl_lines

                chunks = (endpoint_csv_lines if fmt == "csv" else endpoint_jsonl_lines)(store, f, suite)
            elif fmt == "csv":
                chunks = csv_lines(store, f)
            elif fmt == "jsonl":
                chunks = jsonl_lines(store, f)
            else:
                chunks = ooni_lines(store, f)
            n = _write_stream(chunks, output)
            if output is not None:
                click.echo(f"{output}: {n} lines", err=True)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output or 'output'}: {exc}") from None
