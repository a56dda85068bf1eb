"""secureroute's gRPC server: SecureRouteService behind jwt_authn, with health and reflection.

Usage:
    from service import build_server, load_service_settings

    app = build_server(load_service_settings(["--issuer", url, "--audience", "secureroute"]))
    await app.start()
"""

from service.server import SecureRouteServer, build_server
from service.settings import ServiceSettings, authn_config, load_service_settings

__all__ = ["SecureRouteServer", "ServiceSettings", "authn_config", "build_server", "load_service_settings"]
