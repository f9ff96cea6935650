"""The sandbox ToolServer: a manager of hardened Docker containers, one per session, each driven by one runner.

``Manager`` works in process; ``create_app`` puts it behind HTTP (``ponder toolserver serve``); ``build_image`` makes
the node image offline. Strategies use the client in :mod:`ponder.tools` (``build_toolserver``), not this package.
The names load lazily so that ``ponder --help`` does not import the Docker SDK and FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ponder.toolserver._app import create_app
    from ponder.toolserver._image import build_image
    from ponder.toolserver._manager import Manager

__all__ = ["Manager", "build_image", "create_app"]
_WHERE = {"Manager": "_manager", "build_image": "_image", "create_app": "_app"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"ponder.toolserver.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'ponder.toolserver' has no attribute {name!r}")
