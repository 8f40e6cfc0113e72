"""What both the in-process app and the live server of the browser tests run with."""

from __future__ import annotations

import os
import socket
from typing import Any

IN_CI = os.environ.get("CI") == "true"  # there, a missing service fails instead of skipping

# Settings every test app shares; the databases, folders and SMTP port are per test.
TEST_SETTINGS: dict[str, Any] = {
    "secret_key": "test-secret-key-not-for-production",
    # Cheap argon2 parameters keep the suite fast; production keeps the library defaults.
    "argon2_time_cost": 1,
    "argon2_memory_kib": 1024,
    "argon2_parallelism": 1,
    "job_interval_seconds": 3600.0,
    # The suite's admins sign in through helpers without a code; tests of two-factor itself
    # (tests/test_two_factor.py, the URL-map walk) set "required", the production default.
    "admin_two_factor": "optional",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
