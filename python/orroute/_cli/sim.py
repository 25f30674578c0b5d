"""``orroute sim``: FakeOpenRouter on its own, for trying agents and the CLI offline."""

from __future__ import annotations

import time
from typing import Any

import click

from ._common import CLIError

_FAULT_HELP = """\
Fault specs are TARGET=KIND[:ARG][@TIMES]. TARGET is a model id, * (every model) or an endpoint
such as /credits. KIND is one of: rate_limit[:retry_after], payment_required, unauthorized,
moderation, server_error[:status], status:CODE, bad_request, hang, reset, stream_error[:after],
malformed_json, slow_drip[:interval], delay:seconds. @TIMES applies it to the next TIMES requests
only (default: every request)."""


def parse_fault(spec: str) -> tuple[str, Any, int | None]:
    """``"openai/gpt-4o=server_error:503@2"`` -> (target, Fault, times)."""
    from ..testing import Fault

    target, sep, rest = spec.rpartition("=")
    if not sep or not target or not rest:
        raise click.BadParameter(f"{spec!r}: expected TARGET=KIND[:ARG][@TIMES]")
    times: int | None = None
    if "@" in rest:
        rest, _, t = rest.rpartition("@")
        if not t.isdigit() or int(t) < 1:
            raise click.BadParameter(f"{spec!r}: @TIMES must be a positive whole number")
        times = int(t)
    kind, _, arg = rest.partition(":")
    kind = kind.strip().lower().replace("-", "_")

    def num(default: float | None = None) -> float:
        if not arg:
            if default is None:
                raise click.BadParameter(f"{spec!r}: {kind} needs an argument ({kind}:N)")
            return default
        try:
            return float(arg)
        except ValueError:
            raise click.BadParameter(f"{spec!r}: {arg!r} is not a number") from None

    makers = {
        "rate_limit": lambda: Fault.rate_limit(retry_after=num(1)),
        "payment_required": Fault.payment_required,
        "unauthorized": Fault.unauthorized,
        "moderation": Fault.moderation,
        "server_error": lambda: Fault.server_error(int(num(500))),
        "status": lambda: Fault.status_error(int(num())),
        "bad_request": Fault.bad_request,
        "hang": Fault.hang,
        "reset": Fault.reset,
        "stream_error": lambda: Fault.stream_error(int(num(3))),
        "malformed_json": Fault.malformed_json,
        "slow_drip": lambda: Fault.slow_drip(num(0.01)),
        "delay": lambda: Fault.delay(num()),
    }
    if kind not in makers:
        raise click.BadParameter(f"{spec!r}: unknown fault {kind!r} (one of {', '.join(makers)})")
    try:
        fault = makers[kind]()
    except ValueError as e:
        raise click.BadParameter(f"{spec!r}: {e}") from None
    return target.strip(), fault, times


@click.command(epilog=_FAULT_HELP,
               short_help="Run FakeOpenRouter (a local OpenRouter) until Ctrl+C.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="0 picks a free port.")
@click.option("--fault", "--faults", "faults", multiple=True, metavar="SPEC",
              help="Inject a fault (repeatable), e.g. 'openai/gpt-4o=rate_limit:2'.")
@click.option("--latency", type=float, default=0.0, help="Seconds before each answer starts.")
@click.option("--ttft", type=float, default=0.0, help="Further seconds to the first token.")
@click.option("--tps", "tokens_per_second", type=float, default=None,
              help="Streaming pace in tokens per second (default: all at once).")
@click.option("--realistic", is_flag=True,
              help="Per-model latencies like the demo's (overrides --latency/--ttft/--tps).")
@click.option("--seed", type=int, default=0)
@click.option("--credits", type=float, default=1_000_000, help="Account credits in USD.")
@click.option("--api-key", "api_keys", multiple=True, metavar="KEY",
              help="Only accept this key (repeatable); default accepts any.")
def sim(host: str, port: int, faults: tuple[str, ...], latency: float, ttft: float,
        tokens_per_second: float | None, realistic: bool, seed: int, credits: float,
        api_keys: tuple[str, ...]) -> None:
    """Run FakeOpenRouter, a loopback server that speaks OpenRouter's API, until Ctrl+C.

    Point a client at it with OPENROUTER_BASE_URL=http://HOST:PORT/api/v1.
    """
    from ..testing import FakeOpenRouter

    parsed = [parse_fault(f) for f in faults]
    fake = FakeOpenRouter(host=host, port=port, latency=latency, ttft=ttft,
                          tokens_per_second=tokens_per_second, seed=seed, credits=credits,
                          api_key=list(api_keys) or None, record=False,
                          use_uvloop=False)  # the stdlib loop is plenty for a CLI server
    if realistic:
        from ._demo_workload import apply_realistic_profiles

        apply_realistic_profiles(fake)
    for target, fault, times in parsed:
        fake.fail(target, fault, times=times)
    try:
        fake.start()
    except OSError as e:
        raise CLIError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        click.echo(f"FakeOpenRouter listening on {fake.base_url}", err=False)
        click.echo(f"  export OPENROUTER_BASE_URL={fake.base_url}", err=False)
        for target, fault, times in parsed:
            when = f"next {times} requests" if times else "every request"
            click.echo(f"  fault: {target} -> {fault.kind}"
                       f"{' ' + str(fault.status) if fault.status else ''} ({when})")
        click.echo("Ctrl+C to stop.", err=False)
        import sys

        sys.stdout.flush()
        # Short sleeps, not one untimed wait: the kernel may hand Ctrl+C to one of the server's
        # threads, where Python's handler only sets a flag that this thread reads when it next
        # runs; an untimed wait never woke to read it.
        while True:
            time.sleep(0.25)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        fake.stop()
