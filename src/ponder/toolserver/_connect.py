"""The ToolServer the settings describe: a remote manager when ``url`` is set, else one in this process (the Docker
SDK loads only then)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ponder.config import ToolServerSettings
from ponder.tools import HttpToolServer

if TYPE_CHECKING:
    from ponder.toolserver._local import LocalToolServer


def build_toolserver(settings: ToolServerSettings) -> LocalToolServer | HttpToolServer:
    if settings.url:
        token = settings.token.get_secret_value() if settings.token else None
        return HttpToolServer(settings.url, token, call_timeout_s=settings.call_timeout_s)
    from ponder.toolserver._local import LocalToolServer

    return LocalToolServer(settings)
