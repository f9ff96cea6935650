"""The sandbox ToolServer: a manager of hardened Docker containers, one per session, each driven by one runner.

``Manager`` works in process (``LocalToolServer`` wraps it as a ToolServer); ``create_app`` puts it behind HTTP
(``ponder toolserver serve``); ``build_image`` makes the node image offline. Strategies see only the ToolServer
protocol of :mod:`ponder.tools`; ``build_toolserver`` picks the local or the HTTP one from the settings.
The names load lazily so that ``ponder --help`` does not import the Docker SDK and FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ponder.toolserver._app import create_app
    from ponder.toolserver._connect import build_toolserver
    from ponder.toolserver._image import build_image
    from ponder.toolserver._local import LocalToolServer
    from ponder.toolserver._manager import Manager

__all__ = ["LocalToolServer", "Manager", "build_image", "build_toolserver", "create_app"]
_WHERE = {
    "LocalToolServer": "_local",
    "Manager": "_manager",
    "build_image": "_image",
    "build_toolserver": "_connect",
    "create_app": "_app",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"ponder.toolserver.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'ponder.toolserver' has no attribute {name!r}")
