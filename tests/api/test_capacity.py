"""At capacity the API says so: a request that cannot get a database connection within the pool timeout is answered
503 with Retry-After (a client knows to come back), not a 500 or a hung request; and it works again once a
connection is free. Real app, real database (SQLite file and the session's Postgres), in this test's event loop."""

from __future__ import annotations

from pathlib import Path

import httpx

from ponder.api import create_app
from tests.api._strategies import TEST_STRATEGIES
from tests.api._support import make_settings, reply
from tests.fakes import FunctionModel


async def test_exhausted_database_pool_answers_503_with_retry_after(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    settings.api.db_pool_size, settings.api.db_max_overflow, settings.api.db_pool_timeout_s = 1, 0, 0.3
    app = create_app(settings, model=FunctionModel(reply), strategies=TEST_STRATEGIES)
    async with app.router.lifespan_context(app):
        store = app.state.service.store
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ponder.test", timeout=10) as client:
            assert (await client.get("/runs")).status_code == 200
            held = await store.engine.connect()  # the pool's only connection
            try:
                busy = await client.get("/runs")
            finally:
                await held.close()
            assert busy.status_code == 503
            assert busy.headers["retry-after"].isdigit()
            error = busy.json()["error"]
            assert error["type"] == "ServiceBusy" and error["retryable"] is True
            assert "PONDER_API__DB_POOL_SIZE" in error["hint"]
            again = await client.get("/runs")
            assert again.status_code == 200, again.text
