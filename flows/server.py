"""Which Prefect server the runs report to, and whether it answers: a server that is down must cost one clear
line, not a traceback (``qaug stage`` then runs without Prefect; ``qaug flow`` stops before any work)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx


def api_url() -> str | None:
    """The configured Prefect API (PREFECT_API_URL or the active profile); None means a temporary server."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why the Prefect API at ``url`` does not answer its health check, or None when it does (Prefect's own
    client: the profile's auth and TLS settings apply; a short timeout, not the client's minute)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True, httpx_settings={"timeout": timeout}) as client:
        err = client.api_healthcheck()
    return None if err is None else f"{type(err).__name__}: {err}".rstrip(": ")


def down_message(url: str, why: str) -> str:
    return f"the Prefect server at {url} does not answer ({why}); start it (`prefect server start`) or unset PREFECT_API_URL"


def lost_server_errors() -> tuple[type[BaseException], ...]:
    """What Prefect raises when its server goes away mid-run: HTTP errors, and concurrency slots (task tags
    and the deployment's limit) it can no longer acquire."""
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.v1._asyncio import ConcurrencySlotAcquisitionError as V1SlotError
    from prefect.exceptions import PrefectHTTPStatusError

    return (httpx.HTTPError, PrefectHTTPStatusError, ConcurrencySlotAcquisitionError, V1SlotError)


# Who reports a lost server, once per API call, event and log batch (~170 lines for one loss): Prefect's own
# loggers (prefect.events.clients, prefect._internal.concurrency's EventsWorker with whole events, the flow and
# task run engines' tracebacks) and the HTTP and websocket libraries under them.
NOISY = ("prefect", "httpx", "httpcore", "websockets")


class _Unheard(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(NOISY)


def silence_prefect() -> None:
    """Drop Prefect's records from every handler, for the rest of the process (its shutdown reports each unsent
    event again), and its API log worker's "--- Error logging to API ---" writes (they honour
    ``logging.raiseExceptions``, as the standard library's handlers do)."""
    logging.raiseExceptions = False
    unheard = _Unheard()
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    for handler in {h for lg in loggers for h in lg.handlers}:
        handler.addFilter(unheard)


@contextmanager
def watching(url: str, on_lost: Callable[[], None], every: float = 0.5, patience: int = 3) -> Iterator[threading.Event]:
    """While the block runs, ask the server's health endpoint every ``every`` seconds; once it is gone, silence
    Prefect (:func:`silence_prefect`), call ``on_lost`` (the caller's one line) and set the event the block
    gets. Gone:
    a refused connection, or ``patience`` requests in a row without an answer (a busy server answers late, not
    never); any HTTP answer (an auth error too) is a server."""
    lost, done = threading.Event(), threading.Event()

    def watch() -> None:
        silent = 0
        with httpx.Client(timeout=2.0) as client:
            while not done.wait(every):
                try:
                    client.get(f"{url.rstrip('/')}/health")
                    silent = 0
                except httpx.ConnectError:
                    silent = patience
                except httpx.TransportError:
                    silent += 1
                if silent >= patience:
                    silence_prefect()
                    on_lost()
                    lost.set()
                    return

    watcher = threading.Thread(target=watch, name="qaug-server-watch", daemon=True)
    watcher.start()
    try:
        yield lost
    finally:
        done.set()
        watcher.join(timeout=5)
