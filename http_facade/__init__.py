"""secureroute's HTTP facade: an aiohttp app in front of the gRPC service.

Usage:
    from http_facade import create_app, load_facade_settings

    app = create_app(load_facade_settings(["--backend", "localhost:50051"]))
"""

from http_facade.app import create_app
from http_facade.settings import FacadeSettings, load_facade_settings

__all__ = ["FacadeSettings", "create_app", "load_facade_settings"]
