import os

import numpy as np
import pytest
import torch

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def prefect_api():
    """One temporary Prefect server for the whole session (starting one costs 5–15 s)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # heartbeats make every flow run wait ~1 s at its end; the server's start took 20 s on an idle
    # 2-core machine and once ran past Prefect's default 30 s limit in the full suite
    with prefect_test_harness(server_startup_timeout=180), temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
