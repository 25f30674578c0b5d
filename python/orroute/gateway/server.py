"""The gateway server: one event loop (uvloop when installed) running orroute's HTTP/1.1 protocol.

>>> from orroute.gateway import Gateway
>>> with Gateway(base_url=fake.base_url, ledger=tmp / "ledger.sqlite3") as gw:  # doctest: +SKIP
...     key = gw.keys.create("demo")[0]
...     client = openai.OpenAI(base_url=gw.base_url, api_key=key)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

from .._http_server import HttpServer, new_event_loop, serve_in_thread
from .app import GatewayApp
from .keys import KeyStore
from .settings import GatewaySettings, load_gateway_settings

__all__ = ["Gateway"]

_log = logging.getLogger("orroute.gateway")


class Gateway:
    """``orroute serve`` as an object: an OpenAI-compatible endpoint in front of the upstream.

    Args:
        settings: a :class:`GatewaySettings` (default: :func:`load_gateway_settings`).
        tracker: an ``orroute.CostTracker`` (default: one on the settings' ledger).
        catalog: an ``orroute.Catalog`` (default: the upstream's ``/models``, else the bundled
            snapshot).
        on_request, on_response, on_error, on_budget_alert: callbacks of every chat call the
            gateway routes (see :mod:`orroute.observe`).
        **overrides: any GatewaySettings field (``host``, ``port``, ``base_url``, ``api_key``,
            ``ledger``, ``routes``, ``strategy``, ...).

    ``start()`` runs it on a background thread (tests, embedding); ``run()`` in the foreground
    until SIGINT/SIGTERM (the command line).
    """

    def __init__(self, settings: GatewaySettings | None = None, *, tracker: Any = None,
                 catalog: Any = None, on_request: Any = None, on_response: Any = None,
                 on_error: Any = None, on_budget_alert: Any = None,
                 **overrides: Any) -> None:
        if settings is None:
            settings = load_gateway_settings(**overrides)
        else:
            for k, v in overrides.items():
                setattr(settings, k, v)
        self.settings = settings
        self._callbacks = {"on_request": on_request, "on_response": on_response,
                           "on_error": on_error, "on_budget_alert": on_budget_alert}
        if tracker is None:
            from ..cost import CostTracker

            tracker = CostTracker(settings.ledger_path())
        self.tracker = tracker
        keys_path = tracker.path
        if getattr(tracker, "backend", "sqlite") == "redis":
            # Gateway keys live in a SQLite file; with a Redis ledger, one per machine.
            from ..config import default_home

            keys_path = str(default_home() / "gateway-keys.sqlite3")
        self.keys = KeyStore(keys_path, cache_ttl=settings.key_cache_ttl)
        self._catalog = catalog
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HttpServer | None = None
        self.app: GatewayApp | None = None
        self.manager: Any = None  # the orroute.AIModelManager, once started
        self._port = settings.port

    def __repr__(self) -> str:
        state = f"listening on {self.url}" if self._server is not None else "stopped"
        return f"<Gateway {state}, upstream {self.settings.base_url}>"

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``: ``http://host:port/v1``."""
        return f"{self.url}/v1"

    # --- lifecycle ----------------------------------------------------------------------------

    def _build_manager(self) -> Any:
        """The router: one engine (one libcurl loop, breakers, rate limits, retry policy) on the
        gateway's ledger. Without a given catalog the engine reads the upstream's ``/models``
        (the bundled snapshot when that fails). Blocks up to ~6 s: run off the event loop."""
        from ..manager import AIModelManager

        s = self.settings
        return AIModelManager(
            api_key=s.api_keys(), base_url=s.base_url, strategy=s.strategy, ledger=self.tracker,
            catalog=self._catalog, refresh_catalog=self._catalog is None, limits=s.limits,
            breaker=s.breaker, max_retries=s.max_retries,
            max_admission_wait=s.max_admission_wait, timeout=s.timeout,
            max_candidates=s.candidates if s.fallback_enabled else 1,
            app_name="orroute gateway", router_state=s.router_state, settings=s.config,
            providers=s.providers,
            **self._callbacks,
        )

    async def _start_async(self, reuse_port: bool = False) -> None:
        from .._engine import engine_of
        from ..catalog import Catalog
        from ..selector import ModelSelector

        s = self.settings
        loop = asyncio.get_running_loop()
        manager = await loop.run_in_executor(None, self._build_manager)
        self.manager = manager
        catalog = self._catalog if self._catalog is not None else Catalog(engine_of(manager).catalog)
        selector = ModelSelector(catalog, strategy=s.strategy)
        self.app = GatewayApp(s, keys=self.keys, tracker=self.tracker, catalog=catalog,
                              selector=selector, manager=manager)
        limits = s.http.fitted_to_open_files(per_connection=2)
        if limits.max_connections < s.http.max_connections:
            _log.warning("serving at most %d connections, not max_connections = %d: the "
                         "open-file limit (ulimit -n) has room for no more",
                         limits.max_connections, s.http.max_connections)
        self._server = HttpServer(self.app, limits)
        self.app.http_server = self._server
        await self._server.start(s.host, self._port, reuse_port=reuse_port or None)
        self._port = self._server.port

    async def _stop_async(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.app is not None:
            for conn in list(self.app.conns):
                conn.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()  # each handler cancels its engine run (the reservation is released)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def start(self) -> Gateway:
        """Starts serving on a background thread (idempotent). Returns self."""
        if self._thread is not None:
            return self
        loop = new_event_loop(self.settings.use_uvloop)
        self._loop = loop
        try:
            self._thread = serve_in_thread(loop, self._start_async, name="orroute-gateway")
        except BaseException:
            self._loop = None
            raise
        return self

    def stop(self) -> None:
        """Closes every connection (cancelling their upstream calls) and stops (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop_async(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = self._loop = None
            self._server = None

    close = stop

    def flush(self) -> None:
        """Kept for compatibility: the engine settles every call in the ledger before its
        response is written, so there is nothing to wait for."""

    def stream_pauses(self) -> int:
        """Times a stream's upstream transfer was paused because its client read slowly."""
        loop, app = self._loop, self.app
        if loop is None or app is None:
            return 0

        async def count() -> int:
            return app.stream_pauses()

        return asyncio.run_coroutine_threadsafe(count(), loop).result(10)

    def health(self) -> dict[str, Any]:
        """The router's health (``AIModelManager.health()``): each model's state (ok, degraded,
        circuit open, rate limited) and an overall state."""
        if self.manager is None:
            raise RuntimeError("the gateway is not running")
        return self.manager.health()

    def __enter__(self) -> Gateway:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, *, ready: Any = None, reuse_port: bool = False) -> None:
        """Serves in the foreground until SIGINT or SIGTERM. ``ready(gateway)`` is called once
        listening."""
        loop = new_event_loop(self.settings.use_uvloop)
        asyncio.set_event_loop(loop)
        stop = asyncio.Event()
        try:
            loop.run_until_complete(self._start_async(reuse_port=reuse_port))
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                    pass
            if ready is not None:
                ready(self)
            loop.run_until_complete(stop.wait())
            loop.run_until_complete(self._stop_async())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
