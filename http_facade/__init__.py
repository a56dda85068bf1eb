"""secureroute's HTTP facade: an aiohttp app in front of the gRPC service.

Usage:
    from http_facade import FacadeSettings, create_app

    app = create_app(FacadeSettings.load(["--backend", "localhost:50051"]))
"""

from http_facade.app import create_app
from http_facade.settings import FacadeSettings

__all__ = ["FacadeSettings", "create_app"]
