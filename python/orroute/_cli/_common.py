"""What every command shares: settings, errors and exit codes, JSON and table output."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from .. import _exceptions as E

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_API = 4
EXIT_NOT_FOUND = 5
EXIT_INTERRUPTED = 130


class Usd(click.ParamType):
    """An amount of USD as typed, exactly (a Decimal: no float between the command line and the
    ledger), finite and not negative."""

    name = "usd"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            amount = Decimal(str(value).strip())
        except ArithmeticError:
            self.fail(f"not an amount of USD: {value!r}", param, ctx)
        if not amount.is_finite() or amount < 0:
            self.fail(f"must be a finite amount of USD >= 0, got {value!r}", param, ctx)
        return amount


USD = Usd()


class CLIError(click.ClickException):
    """A user-facing failure: one line on stderr and an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def exit_code_for(e: BaseException) -> int:
    """The documented exit code of an exception."""
    if isinstance(e, E.BudgetError):
        return EXIT_BUDGET
    if isinstance(e, E.APIError):
        return EXIT_API
    if isinstance(e, E.NotFoundInCatalogError):
        return EXIT_NOT_FOUND
    if isinstance(e, (E.InvalidArgumentError,)):
        return EXIT_USAGE
    return EXIT_ERROR


def one_line(e: BaseException) -> str:
    """A single line describing ``e`` (orroute errors carry their own message; other exceptions
    are prefixed by their class so that the line still means something)."""
    msg = str(e).strip() or type(e).__name__
    if isinstance(e, E.NotFoundInCatalogError) and msg.startswith("'") and msg.endswith("'"):
        msg = msg[1:-1]
    if isinstance(e, E.APIStatusError) and e.status_code:
        msg = f"{msg} (HTTP {e.status_code})"
    if isinstance(e, OSError) and getattr(e, "filename", None):
        msg = f"{e.filename}: {e.strerror or msg}"
    elif not isinstance(e, (E.OrRouteError, ValueError)):
        msg = f"{type(e).__name__}: {msg} (run with --debug for the traceback)"
    first, *rest = msg.splitlines() or [msg]
    return first + (" ..." if rest else "")


class AppContext:
    """Per-invocation state: the settings (read once, on first use)."""

    def __init__(self, *, config_file: str | None = None, env_file: str | None = None,
                 overrides: Mapping[str, Any] | None = None, debug: bool = False) -> None:
        self.config_file = config_file
        self.env_file = env_file
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.debug = debug
        self._settings: Any = None

    @property
    def settings(self) -> Any:
        if self._settings is None:
            from ..config import load_settings

            self._settings = load_settings(config_file=self.config_file, env_file=self.env_file,
                                           overrides=self.overrides)
            _configure_logging(self._settings.log_level)
        return self._settings


def _configure_logging(level: str) -> None:
    """orroute's loggers write to stderr at LOG_LEVEL (the library itself only logs)."""
    from ..config import apply_log_level

    apply_log_level(level, handler=True)


def app(ctx: click.Context | None = None) -> AppContext:
    ctx = ctx or click.get_current_context()
    obj = ctx.find_object(AppContext)
    if obj is None:  # a command invoked on its own (tests)
        obj = ctx.ensure_object(AppContext)
    return obj


def settings() -> Any:
    return app().settings


def require_key(s: Any) -> None:
    """Fails with one line when the configured endpoint needs a key and there is none."""
    if not s.api_key and s.is_openrouter:
        raise CLIError(
            "no API key: set OPENROUTER_API_KEY (environment or .env), or point "
            "OPENROUTER_BASE_URL at another endpoint (e.g. `orroute sim`)", EXIT_API)


# --- output ---------------------------------------------------------------------------------------


def to_data(obj: Any) -> Any:
    """Plain JSON-ready data. Amounts of money (Decimal) become strings with their exact value."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    for meth in ("to_dict", "as_dict", "model_dump", "_asdict"):
        fn = getattr(obj, meth, None)
        if callable(fn):
            return to_data(fn())
    if isinstance(obj, (list, tuple, set, frozenset)) or (
        isinstance(obj, Iterable) and not isinstance(obj, (bytes, bytearray))
    ):
        return [to_data(v) for v in obj]
    if hasattr(obj, "__slots__") or hasattr(obj, "__dict__"):
        names = [n for n in getattr(obj, "__slots__", ()) if not n.startswith("_")] or [
            n for n in vars(obj) if not n.startswith("_")]
        return {n: to_data(getattr(obj, n)) for n in names}
    return str(obj)


def emit_json(obj: Any) -> None:
    """Prints ``obj`` as indented JSON on stdout."""
    click.echo(json.dumps(to_data(obj), indent=2, ensure_ascii=False))


def console(stderr: bool = False) -> Any:
    """A rich Console (imported on first use)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output is read by people and tools alike: do not squeeze it into 80 columns
    width = None if stream.isatty() else 140
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def plain_output() -> bool:
    """True when stdout is not a terminal (a pipe or a file): tables are printed as TSV.
    ``ORROUTE_OUTPUT=table`` or ``tsv`` overrides."""
    from ..config import output_form

    forced = output_form()
    if forced is not None:
        return forced == "tsv"
    return not sys.stdout.isatty()


def _tsv_field(v: Any) -> str:
    text = str(v) if isinstance(v, int) and not isinstance(v, bool) else cell(v)  # no "1,234"
    return text.replace("\t", " ").replace("\n", " ")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                *, justify: Mapping[str, str] | None = None, caption: str | None = None) -> None:
    """Prints a rich table on stdout; when stdout is not a terminal, the same cells as TSV (a
    header line, then one line per row; title and caption go to stderr if that is a terminal).
    Columns named in ``justify`` get that alignment; columns of numbers are right-aligned when
    their first value is a number or an amount."""
    rows = [list(r) for r in rows]
    if plain_output():
        lines = ["\t".join(_tsv_field(c) for c in columns)]
        lines += ["\t".join(_tsv_field(v) for v in r) for r in rows]
        click.echo("\n".join(lines))
        if sys.stderr.isatty():
            for note in (title, caption):
                if note:
                    click.echo(note, err=True)
        return
    from rich.table import Table

    table = Table(title=title, caption=caption, show_lines=False, header_style="bold")
    for i, col in enumerate(columns):
        j = (justify or {}).get(col)
        if j is None and rows:
            v = rows[0][i]
            j = "right" if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) else (
                "right" if isinstance(v, str) and v[:1] == "$" else "left")
        table.add_column(col, justify=j or "left", no_wrap=i == 0,  # type: ignore[arg-type]
                         overflow="fold" if i == 0 else "ellipsis")
    for r in rows:
        table.add_row(*[cell(v) for v in r])
    console().print(table)


def cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, Decimal):
        return usd(v)
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def usd(amount: Any, *, per: str = "") -> str:
    """``$1.2345``, ``$0.000125``: four decimals from a cent up, else up to three significant
    digits below the first non-zero one."""
    if amount is None:
        return "-"
    d = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if d == 0:
        s = "$0"
    elif abs(d) >= Decimal("0.01"):
        s = f"${d:,.4f}"
        while s.endswith("0") and len(s.split(".")[1]) > 2:
            s = s[:-1]
    else:
        exp = d.adjusted()  # position of the first significant digit
        places = min(-exp + 2, 12)
        s = f"${d:.{places}f}".rstrip("0").rstrip(".")
    return s + per


def per_million(price_per_token: Any) -> str:
    """A per-token price as USD per million tokens."""
    if price_per_token is None:
        return "-"
    d = Decimal(str(price_per_token)) * 1_000_000
    if d < 0:
        return "dynamic"
    return usd(d)


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def is_tty() -> bool:
    return sys.stdout.isatty()


# --- library objects built from the settings (one place maps settings to constructor args) ------


def since_for(period: str, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """Start of a reporting period (UTC): today = since midnight, week / month = the last 7 / 30
    days, all = no start."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if period == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return now - _dt.timedelta(days=7)
    if period == "month":
        return now - _dt.timedelta(days=30)
    return None


def make_client(s: Any, *, async_: bool = False) -> Any:
    """An ``orroute.OpenRouter`` (or ``AsyncOpenRouter``) for the settings' endpoint and key."""
    import orroute

    require_key(s)
    cls = orroute.AsyncOpenRouter if async_ else orroute.OpenRouter
    kwargs = _call_options(s)
    if s.app_url:
        kwargs["app_url"] = s.app_url
    return cls(**kwargs)


def _call_options(s: Any) -> dict[str, Any]:
    """The constructor arguments a client and a manager share: endpoint, key, timeout, retries
    and the attribution name (only the ones the settings set)."""
    kwargs: dict[str, Any] = {"api_key": s.api_key, "base_url": s.base_url, "settings": s}
    if s.timeout is not None:
        kwargs["timeout"] = s.timeout
    if s.max_retries is not None:
        kwargs["max_retries"] = s.max_retries
    if s.app_name:
        kwargs["app_name"] = s.app_name
    return kwargs


def make_tracker(s: Any) -> Any:
    """The ``orroute.CostTracker`` of the settings' ledger (created on first use)."""
    import orroute

    path = str(s.ledger_path)  # a Redis URL in full (the tracker hides its password)
    if path != ":memory:" and not path.startswith(("redis://", "rediss://")):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return orroute.CostTracker(ledger=path)


def make_manager(s: Any, *, strategy: str | None = None, budget: Any = None,
                 preferred_model: str | None = None, fallback: bool | None = None) -> Any:
    """An ``orroute.AIModelManager`` wired to the settings: endpoint, key, strategy, ledger,
    project, preferred model and fallbacks, rate limits; the config file's budgets are written to
    the ledger (idempotently) so every process sees them."""
    import importlib.util

    import orroute

    if importlib.util.find_spec("orroute.manager") is None:
        raise CLIError("this build of orroute has no router (orroute.AIModelManager) yet")
    require_key(s)
    preferred = preferred_model or s.preferred_model
    use_fallbacks = s.fallback_enabled if fallback is None else fallback
    kwargs = _call_options(s)
    kwargs.update(strategy=strategy or s.strategy, ledger=str(s.ledger_path), project=s.project)
    if getattr(s, "router_state", None):
        kwargs["router_state"] = str(s.router_state)  # breakers and limits shared via Redis
    if preferred:
        kwargs["preferred_model"] = preferred
    if not use_fallbacks and preferred:
        kwargs["fallbacks"] = [preferred]  # the exact order: this model only
    elif use_fallbacks and s.fallbacks:
        kwargs["fallbacks"] = [m for m in [preferred, *s.fallbacks] if m]
    if s.limits:
        kwargs["limits"] = {m: lim.as_dict() for m, lim in s.limits.items()}
    if s.budgets and str(s.ledger_path) != ":memory:":
        tracker = make_tracker(s)
        for b in s.budgets:
            tracker.set_budget(b.limit, period=b.period, project=b.project,
                               conversation=b.conversation, tag=b.tag, policy=b.policy)
    if isinstance(s.ledger_path, Path) and str(s.ledger_path) != ":memory:":
        Path(s.ledger_path).parent.mkdir(parents=True, exist_ok=True)
    manager = orroute.AIModelManager(**kwargs)
    if budget is not None:
        manager.set_budget(budget)
    return manager


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]`` (library results are objects; raw API data are dicts)."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def records(obj: Any) -> list[dict[str, Any]]:
    """Rows of a library result as dicts: a DataFrame, a list of objects/dicts, or a mapping of
    key -> row."""
    if obj is None:
        return []
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and hasattr(obj, "columns"):  # a pandas DataFrame
        df = obj.reset_index() if getattr(obj.index, "name", None) else obj
        return [dict(r) for r in df.to_dict("records")]
    if isinstance(obj, Mapping):
        return [{"key": k, **(v if isinstance(v, Mapping) else {"value": v})}
                for k, v in obj.items()]
    out = []
    for r in obj:
        d = r if isinstance(r, Mapping) else to_data(r)
        out.append(dict(d) if isinstance(d, Mapping) else {"value": d})
    return out


def print_records(title: str | None, rows: list[dict[str, Any]], *,
                  columns: Sequence[str] | None = None, caption: str | None = None) -> None:
    """A table of dict rows (columns: the given ones, else the keys of the first row)."""
    if not rows:
        click.echo("(nothing recorded)" if title is None else f"{title}: (nothing recorded)")
        return
    cols = list(columns or rows[0].keys())
    print_table(title, [c.replace("_", " ") for c in cols],
                [[r.get(c) for c in cols] for r in rows], caption=caption)
