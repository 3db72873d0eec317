"""Privacy deletion against the real servers (issue 17): the warehouse eraser on PostgreSQL 15 and
the archive eraser on S3 (SeaweedFS verifying SigV4), including SIGKILL after each step and a
rerun. The checks are C++ (tests/erase/erase_real_servers.cc, built as `erase_real_servers`);
this suite starts the servers, hands their addresses over and fails on any failed or skipped
test."""

from __future__ import annotations

import os
import subprocess

import pytest

from pg import pg_server  # noqa: F401  (session fixture: a real PostgreSQL 15)
from test_archive import ACCESS_KEY, BUCKET, SECRET_KEY, seaweed  # noqa: F401  (module fixture)


def erase_bin() -> str:
    b = os.environ.get("SY_ERASE_REAL_BIN", "")
    if not b or not os.access(b, os.X_OK):
        pytest.fail("SY_ERASE_REAL_BIN not set: run through ctest (e2e_erase), which builds "
                    "erase_real_servers")
    return b


def test_erasers_on_postgres_and_s3(pg_server, seaweed):  # noqa: F811
    env = dict(os.environ)
    env.update({
        "SY_ERASE_PG_DSN": pg_server.create_database("erase"),
        "SY_ERASE_S3_ENDPOINT": seaweed.endpoint,
        "SY_ERASE_S3_BUCKET": BUCKET,
        "SY_ERASE_S3_ACCESS_KEY": ACCESS_KEY,
        "SY_ERASE_S3_SECRET_KEY": SECRET_KEY,
    })
    r = subprocess.run([erase_bin()], env=env, capture_output=True, timeout=240)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out[-8000:]
    assert "[  SKIPPED ]" not in out, out[-8000:]
    assert "[  PASSED  ] 4 tests." in out, out[-8000:]
