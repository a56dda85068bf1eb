"""secureroute's gRPC server: SecureRouteService behind jwt_authn, with health and reflection.

Usage:
    from service import build_server, ServiceSettings

    app = build_server(ServiceSettings.load(["--issuer", url, "--audiences", "secureroute"]))
    await app.start()
"""

from service.server import SecureRouteServer, build_server
from service.settings import ServiceSettings, authn_config

__all__ = ["SecureRouteServer", "ServiceSettings", "authn_config", "build_server"]
