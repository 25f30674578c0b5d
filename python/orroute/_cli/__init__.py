"""The ``orroute`` command line. Commands live in one module each and are imported only when run,
so ``orroute --help`` and ``import orroute`` stay fast (rich, pandas and the core load lazily).

Exit codes (also in docs/cli.md):

    0  success
    1  error (malformed file or config, no model fits, unexpected failure)
    2  usage error (bad option or argument)
    3  budget exceeded (or emergency cutoff, or approval denied)
    4  API error (no or rejected API key, no credits, network, rate limit, upstream failure)
    5  not found (unknown model id, budget or ledger)
    130 interrupted (Ctrl+C)

Piped output: tables become TSV (same cells; ``--json`` gives exact values). Every ``--help``
ends with examples (``_examples.py``).
"""

from __future__ import annotations

import importlib
import os

import click

from ._common import AppContext, CLIError, exit_code_for, one_line
from ._examples import add_examples

__all__ = ["cli", "main"]

# command name -> "module:attribute" under orroute._cli. Add a line for a new command (the gateway
# issue adds "serve" and "keys"; the learned-routing issue adds "routing").
_COMMANDS: dict[str, str] = {
    "config": "config_cmd:config",
    "models": "models:models",
    "ask": "ask:ask",
    "analytics": "analytics:analytics",
    "budget": "budget:budget",
    "simulate": "analytics:simulate_cmd",
    "credits": "account:credits",
    "health": "account:health",
    "sim": "sim:sim",
    "demo": "demo:demo",
    "serve": "serve:serve",
    "keys": "serve:keys",
    "routing": "routing:routing",
    "cache": "cache_cmd:cache",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: object, lazy: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attr = self.lazy[cmd_name].partition(":")
            try:
                mod = importlib.import_module(f"{__name__}.{module}")
            except ModuleNotFoundError as e:
                if e.name != f"{__name__}.{module}":
                    raise
                return None
            command = getattr(mod, attr)
            add_examples(command, cmd_name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


class RootGroup(LazyGroup):
    """Turns every expected failure into one line on stderr and a documented exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise CLIError("interrupted", 130) from None
        except BrokenPipeError:
            # output piped into `head` and closed: not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            raise click.exceptions.Exit(0) from None
        except Exception as e:
            if isinstance(ctx.obj, AppContext) and ctx.obj.debug:
                raise
            raise CLIError(one_line(e), exit_code_for(e)) from None


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from .. import __version__

        click.echo(f"orroute {__version__}")
        ctx.exit(0)


@click.group(cls=RootGroup, lazy=_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML config file (default: ./orroute.toml, then $ORROUTE_HOME/config.toml).")
@click.option("--env-file", type=click.Path(dir_okay=False), default=None,
              help="A .env file to read instead of ./.env.")
@click.option("--ledger", default=None, metavar="PATH",
              help="Ledger file or redis:// URL (default: $ORROUTE_HOME/ledger.sqlite3).")
@click.option("--project", default=None, help="Project that spend is booked to and reported for.")
@click.option("--debug", is_flag=True, envvar="ORROUTE_DEBUG",
              help="Show tracebacks instead of one-line errors.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Print the version and exit.")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, env_file: str | None, ledger: str | None,
        project: str | None, debug: bool) -> None:
    """orroute: cheap, reliable and accountable LLM calls through OpenRouter.

    Start with `orroute demo` (works offline). Settings come from flags, the environment
    (OPENROUTER_API_KEY, ...), a .env file and orroute.toml; see `orroute config show`.
    """
    ctx.obj = AppContext(config_file=config_file, env_file=env_file,
                         overrides={"ledger": ledger, "project": project}, debug=debug)


add_examples(cli, "")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``orroute`` script."""
    cli.main(args=argv, prog_name="orroute")
