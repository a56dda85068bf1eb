"""The one program's settings keep the names the issue (#14) and the split programs promise:
``--grpc-listen`` / ``SECUREROUTE_GRPC_LISTEN`` and ``--http-listen`` / ``SECUREROUTE_HTTP_LISTEN``
beside every other setting of both programs, under the variables the split programs read.

Each setting from each source: ``test_ops_settings_sources.py``.
"""

from __future__ import annotations

from runtime.listen import ListenAddress
from runtime.settings import settings_of
from secureroute.settings import SecureRouteSettings


def test_groups_not_inlined_carry_their_name_in_flags_and_keys() -> None:
    rows = {row.name: row for row in settings_of(SecureRouteSettings)}
    assert (
        rows["grpc_listen"].flag == "--grpc-listen" and rows["grpc_listen"].env == "SECUREROUTE_GRPC_LISTEN"
    )
    assert (
        rows["http_listen"].flag == "--http-listen" and rows["http_listen"].env == "SECUREROUTE_HTTP_LISTEN"
    )
    assert rows["http_tls_cert"].env == "SECUREROUTE_HTTP_TLS_CERT"  # the variables the split programs read
    assert {"issuer", "audiences", "drain_delay_s", "metrics_listen"} <= set(rows)
    assert "workers" not in rows  # one process: it offers no setting it would refuse
    settings = SecureRouteSettings.load(
        ["--grpc-listen", "127.0.0.1:1", "--issuer", "https://idp.example.com/", "--audiences", "a"],
        {"SECUREROUTE_HTTP_LISTEN": "127.0.0.1:2"},
    )
    assert settings.grpc.listen == ListenAddress("127.0.0.1", 1)
    assert settings.http.listen == ListenAddress("127.0.0.1", 2)
    assert settings.audiences == ("a",)
