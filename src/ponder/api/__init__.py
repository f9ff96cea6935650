"""The service: REST API with streamed events, an OpenAI-compatible endpoint, the chat UI and metrics.

``create_app(settings, model=None, ...)`` builds the FastAPI app from its dependencies; ``ponder serve`` runs it.
"""

from ponder.api._app import create_app
from ponder.api._auth import KeyRing, check_binding, hash_key, is_loopback
from ponder.api._catalog import StrategyCatalog
from ponder.api._record import RunRecord, RunStatus
from ponder.api._store import RunStore

__all__ = [
    "KeyRing",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "StrategyCatalog",
    "check_binding",
    "create_app",
    "hash_key",
    "is_loopback",
]
