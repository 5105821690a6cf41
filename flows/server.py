"""Which Prefect server the runs report to, and whether it answers: a server that is down must cost one clear
line, not a traceback (``qaug stage`` then runs without Prefect; ``qaug flow`` stops before any work)."""

from __future__ import annotations

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
