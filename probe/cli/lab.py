"""`probe lab`: the censorship lab (network namespaces; root only)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli

if TYPE_CHECKING:
    from probe.lab.scenarios import Scenario

__all__ = ["lab"]


def _need_root() -> None:
    import os

    if os.geteuid() != 0:
        raise click.ClickException(
            "the lab needs root: it creates network namespaces and iptables rules "
            "(run `sudo probe lab ...`)"
        )


def _scenarios(names: tuple[str, ...]) -> tuple[Scenario, ...]:
    from probe.lab.scenarios import SCENARIOS, by_name

    if not names:
        return SCENARIOS
    try:
        return tuple(by_name(n) for n in names)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="SCENARIO") from None


@cli.group()
def lab() -> None:
    """The censorship lab: a censor between the probe and lab servers, in network namespaces.

    \b
    Every lab command except `list` needs root. Lab traffic only ever runs inside the lab's
    namespaces; see docs/lab.md.
    """


@lab.command("list")
@click.option("-v", "--verbose", is_flag=True, help="Also show how the censor does each technique.")
def list_command(verbose: bool) -> None:
    """List the scenarios: technique, URLs, and the verdict each must get.

    \b
    Examples:
      probe lab list
      probe lab list -v        # with the censor's rules for each scenario
    """
    from probe.lab.report import format_scenarios

    for line in format_scenarios(_scenarios(()), verbose=verbose):
        click.echo(line, nl=False)


@lab.command()
@click.option("--latency", type=click.FloatRange(0.0), default=0.0, show_default=True,
              metavar="MS", help="Delay added by the censor to each forwarded packet (NFQUEUE).")
@click.option("--bandwidth", metavar="RATE", help="Cap the censor's forwarding rate (tbf), e.g. 8mbit.")
@click.option("--no-helper", is_flag=True, help="Do not start the control helper.")
def up(latency: float, bandwidth: str | None, no_helper: bool) -> None:
    """Build the lab, start its services, and print how to measure inside it.

    \b
    Example:
      sudo probe lab up && sudo probe lab run clean
    """
    _need_root()
    from probe.lab.lab import Lab, LabError

    try:
        lab_ = Lab.create(helper=not no_helper, persistent=True, latency_ms=latency,
                          bandwidth=bandwidth)  # fmt: skip
    except LabError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(lab_.describe())


@lab.command()
@click.option("--all", "all_labs", is_flag=True, help="Also remove every other lab of this machine.")
def down(all_labs: bool) -> None:
    """Stop the lab's services and delete its namespaces (and stale labs of crashed runs).

    \b
    Example:
      sudo probe lab down
    """
    _need_root()
    from probe.lab import topology
    from probe.lab.lab import Lab, LabError

    removed = topology.cleanup_stale()
    while True:
        try:
            lab_ = Lab.attach()
        except LabError:
            break
        lab_.down()
        removed.append(lab_.topo.prefix)
        if not all_labs:
            break
    click.echo(f"removed: {', '.join(removed)}" if removed else "no lab was up")


@lab.command()
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO]...")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the probe's databases here (default: a temporary directory).")
@click.option("--golden", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each target's observations as a golden case into this directory.")
@click.option("-v", "--verbose", is_flag=True, help="Show the probe's errors.")
def run(scenarios: tuple[str, ...], workdir: Path | None, golden: Path | None, verbose: bool) -> None:
    """Run scenarios (default: all) and compare what the probe stored with what is expected.

    Uses the lab started by `probe lab up`, or builds a temporary one. Prints one row per URL:
    expected verdict/stage, the stored one, and PASS, obs (observations right, verdict wrong)
    or FAIL. Exits 1 when any URL did not pass.

    \b
    Examples:
      sudo probe lab run
      sudo probe lab run dns-injection tls-sni-rst --workdir /tmp/lab
    """
    _need_root()
    import tempfile

    from probe.lab.lab import Lab, LabError
    from probe.lab.report import export_golden, format_results

    chosen = _scenarios(scenarios)
    try:
        try:
            lab_, own = Lab.attach(), False
        except LabError:
            lab_, own = Lab.create(), True
    except LabError as exc:
        raise click.ClickException(str(exc)) from None
    if not lab_.helper:
        click.echo(f"note: {lab_.helper_error or 'no control helper'}; verdicts needing a control "
                   "will not match", err=True)  # fmt: skip
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="probe-lab-") as tmp:
            wd = workdir or Path(tmp)
            for s in chosen:
                r = lab_.run_scenario(s, wd)
                results.append(r)
                click.echo(f"{s.name}: {'pass' if r.ok else 'FAIL'} ({r.duration:.1f} s)", err=True)
    finally:
        if own:
            lab_.down()
    for line in format_results(results, verbose=verbose):
        click.echo(line, nl=False)
    if golden:
        dirs = export_golden(results, golden)
        click.echo(f"wrote {len(dirs)} golden cases to {golden}", err=True)
    if not all(r.ok for r in results):
        sys.exit(1)


@lab.command("export-golden")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO]...")
@click.pass_context
def export_golden_command(ctx: click.Context, directory: Path, scenarios: tuple[str, ...]) -> None:
    """Run scenarios and write their recorded observations as classifier golden cases.

    \b
    Example:
      sudo probe lab export-golden tests/unit/golden
    """
    ctx.invoke(run, scenarios=scenarios, workdir=None, golden=directory, verbose=False)
