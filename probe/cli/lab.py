"""`probe lab`: the censorship lab (network namespaces; root only)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from probe.cli._group import cli

if TYPE_CHECKING:
    from probe.lab.scenarios import Scenario

__all__ = ["lab"]

F = TypeVar("F", bound=Callable[..., Any])


def _need_root() -> None:
    import os

    if os.geteuid() != 0:
        raise click.ClickException(
            "the lab needs root: it creates network namespaces and iptables rules "
            "(run `sudo probe lab ...`)"
        )


def _scenarios(names: tuple[str, ...]) -> tuple[Scenario, ...]:
    """The scenarios named (a group name stands for its scenarios; none: every scenario)."""
    from probe.lab.catalogue import select

    try:
        return select(names)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="SCENARIO") from None


@cli.group()
def lab() -> None:
    """The censorship lab: a censor between the probe and lab servers, in network namespaces.

    Every lab command except `list` needs root. Lab traffic only ever runs inside the lab's
    namespaces; see docs/lab.md.
    """


@lab.command("list")
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO|GROUP]...")
@click.option("-v", "--verbose", is_flag=True, help="Also show how the censor does each technique.")
@click.option("--reasons", is_flag=True,
              help="Every verdict, reason, trace conclusion and outage state the judges can name, "
              "with the scenarios that reproduce it or why none can.")
def list_command(scenarios: tuple[str, ...], verbose: bool, reasons: bool) -> None:
    """List the scenarios by technique group: technique, URLs, the verdict each must get, and
    the benign twin of each censorship scenario.

    Groups: web, packets, trace, throttling, circumvention, quic-ech, outages,
    messaging.

    \b
    Examples:
      probe lab list
      probe lab list trace -v  # one group, with the censor's rules
      probe lab list --reasons # what the judges name, and where
    """
    from probe.lab.catalogue import terms
    from probe.present.lab import format_scenarios, format_terms
    from probe.present.terminal import output_width

    chosen = _scenarios(scenarios)
    if reasons:
        lines = format_terms(terms(chosen), width=output_width())
    else:
        lines = format_scenarios(chosen, verbose=verbose, width=output_width(),
                                 terms=() if scenarios else terms(chosen))  # fmt: skip
    for line in lines:
        click.echo(line, nl=False)


def _prefix_option(help_text: str) -> Callable[[F], F]:
    return click.option("--prefix", metavar="PREFIX", help=help_text)


@lab.command()
@_prefix_option("Name the lab's namespaces PREFIX-c, PREFIX-r, ... (default: a fresh pl<6 hex>).")
@click.option("--latency", type=click.FloatRange(0.0), default=0.0, show_default=True,
              metavar="MS", help="Delay added by the censor to each forwarded packet (NFQUEUE).")
@click.option("--bandwidth", metavar="RATE", help="Cap the censor's forwarding rate (tbf), e.g. 8mbit.")
@click.option("--no-helper", is_flag=True, help="Do not start the control helper.")
def up(prefix: str | None, latency: float, bandwidth: str | None, no_helper: bool) -> None:
    """Build a lab of yours, start its services, and print how to measure inside it.

    The lab stays up until you run `probe lab down`; other users' labs and labs of running
    tests are never touched, and several labs (each with its own --prefix) run side by side.

    \b
    Examples:
      sudo probe lab up && sudo probe lab run clean
      sudo probe lab up --prefix mylab && sudo probe lab run --prefix mylab clean
    """
    _need_root()
    from probe.lab.lab import Lab
    from probe.present.lab import describe_lab

    lab_ = Lab.create(helper=not no_helper, persistent=True, latency_ms=latency,
                      bandwidth=bandwidth, prefix=prefix)  # fmt: skip
    click.echo(describe_lab(lab_))


@lab.command()
@_prefix_option("Remove the lab of yours with this prefix.")
@click.option("--all", "all_labs", is_flag=True, help="Remove every lab of yours.")
def down(prefix: str | None, all_labs: bool) -> None:
    """Stop a lab of yours and delete its namespaces (and stale labs of crashed runs).

    Without --prefix or --all it removes your only lab. Labs of other users and labs that a
    running process owns (a test session, a `probe lab run`) are never removed.

    \b
    Examples:
      sudo probe lab down
      sudo probe lab down --prefix mylab
    """
    _need_root()
    from probe.lab import topology
    from probe.lab.lab import Lab, LabError

    if prefix is not None and all_labs:
        raise click.UsageError("--prefix and --all exclude each other")
    removed = topology.cleanup_stale()
    try:
        if all_labs:
            targets = [Lab.attach(i.prefix) for i in topology.labs() if i.live and i.mine()]
        else:
            targets = [Lab.attach(prefix)]
    except LabError as exc:
        if prefix is not None or "several" in str(exc):
            raise click.ClickException(str(exc)) from None
        targets = []  # no lab of yours is up: only stale ones (if any) were removed
    for lab_ in targets:
        lab_.down()
        removed.append(lab_.topo.prefix)
    click.echo(f"removed: {', '.join(removed)}" if removed else "no lab of yours was up")


@lab.command("status")
def status() -> None:
    """List the labs of this machine: prefix, owner, and whether you may use it.

    \b
    Example:
      sudo probe lab status
    """
    _need_root()
    from probe.lab import topology
    from probe.present.lab import format_labs

    for line in format_labs(topology.labs(), topology.creator_uid()):
        click.echo(line)


@lab.command()
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO|GROUP]...")
@_prefix_option("Use the lab of yours with this prefix (default: your only lab, else a new one).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the probe's databases here (default: a temporary directory).")
@click.option("--golden", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each target's observations as a golden case into this directory.")
@click.option("-v", "--verbose", is_flag=True, help="Show the probe's errors.")
def run(scenarios: tuple[str, ...], prefix: str | None, workdir: Path | None, golden: Path | None,
        verbose: bool) -> None:
    """Run scenarios (default: all) and compare what the probe stored with what is expected.

    A group name (web, packets, trace, throttling, circumvention, quic-ech, outages,
    messaging; `probe lab list`) stands for its scenarios. Uses your lab started by `probe lab up` (--prefix
    picks one), or builds a temporary one; never another user's lab or one a running test
    owns. Prints one row per URL:
    expected verdict/stage, the stored one, and PASS, obs (observations right, verdict wrong)
    or FAIL. Exits 1 when any URL did not pass.

    \b
    Examples:
      sudo probe lab run
      sudo probe lab run dns-injection tls-sni-rst --workdir /tmp/lab
      sudo probe lab run throttling trace-drop
    """
    _need_root()
    import tempfile

    from probe.lab.golden import export_golden
    from probe.lab.lab import Lab, LabError
    from probe.present.lab import format_results
    from probe.present.terminal import output_width

    chosen = _scenarios(scenarios)
    try:
        lab_, own = Lab.attach(prefix), False
    except LabError:
        if prefix is not None:
            raise
        lab_, own = Lab.create(), True
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
    for line in format_results(results, verbose=verbose, width=output_width()):
        click.echo(line, nl=False)
    if golden:
        dirs = export_golden(results, golden)
        click.echo(f"wrote {len(dirs)} golden cases to {golden}", err=True)
    if not all(r.ok for r in results):
        sys.exit(1)


@lab.command("censor")
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO|GROUP]...")
@_prefix_option("Use the lab of yours with this prefix (default: your only lab).")
@click.option("--off", is_flag=True, help="Switch the named scenarios off (none named: all of them).")
@click.option("--list", "show", is_flag=True, help="Show what is switched on, and how to measure it.")
@click.pass_context
def censor(ctx: click.Context, scenarios: tuple[str, ...], prefix: str | None, off: bool,
           show: bool) -> None:  # fmt: skip
    """Switch censorship techniques on in a lab made by `probe lab up`.

    Applies the censor of each scenario named (iptables rules, NFQUEUE programs, DNS answers,
    injectors, knobs) beside those already on, until `--off`. Scenarios that act on the same
    traffic cannot both work (one would silently never act): they are refused with the reason,
    exit 2, and nothing changes. Measure by hand from the client namespace, as `probe lab up`
    says.

    \b
    Examples:
      sudo probe lab censor dns-bogon tls-sni-rst
      sudo probe lab censor --list
      sudo probe lab censor --off tls-sni-rst   # --off alone: everything
    """
    _need_root()
    from probe.lab.lab import CensorConflict, Lab, LabError
    from probe.lab.scenarios import Censor
    from probe.present.lab import format_conflicts, format_switched
    from probe.present.terminal import output_width

    if show and (off or scenarios):
        raise click.UsageError("--list takes no scenario and no --off")
    if not (scenarios or off or show):
        raise click.UsageError("name the scenarios to switch on (probe lab list), or --off or --list")
    chosen = _scenarios(scenarios) if scenarios else ()
    try:
        lab_ = Lab.attach(prefix)
    except LabError as exc:
        raise click.ClickException(str(exc)) from None
    width = output_width()
    if show:
        from probe.lab.scenarios import by_name

        on = tuple(by_name(n) for n in lab_.switched_on())
    elif off:
        was_on = lab_.switched_on()
        for s in chosen:
            if s.name not in was_on:
                click.echo(f"{s.name}: was not switched on", err=True)
        on = lab_.switch_off([s.name for s in chosen])
    else:
        idle = [s for s in chosen if s.censor == Censor() and not s.latency_ms and not s.bandwidth]
        for s in idle:
            click.echo(f"{s.name}: nothing to switch on (the lab's sites behave so without a censor)",
                       err=True)  # fmt: skip
        try:
            on = lab_.switch_on([s for s in chosen if s not in idle])
        except CensorConflict as exc:
            for line in format_conflicts(exc.conflicts, width=width):
                click.echo(line, nl=False, err=True)
            click.echo("Error: nothing was switched on (the lab's censor is as it was).", err=True)
            ctx.exit(2)
    for line in format_switched(lab_, on, width=width):
        click.echo(line, nl=False)


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
    ctx.invoke(run, scenarios=scenarios, prefix=None, workdir=None, golden=directory, verbose=False)
