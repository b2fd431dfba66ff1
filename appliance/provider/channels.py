"""The channel object for a provider connection kind (called by `daemon.build_channel`)."""

from __future__ import annotations

from appliance.provider.settings import HTTPClientConfig, HTTPServerConfig, SMTPConfig


def build_provider_channel(conn, sink, clock):
    """An HTTP Client, HTTP Server or SMTP channel, or None for other kinds."""
    if isinstance(conn, HTTPClientConfig):
        from appliance.provider.http_client import HttpClientChannel
        return HttpClientChannel(conn, sink, clock=clock)
    if isinstance(conn, HTTPServerConfig):
        from appliance.provider.http_server import HttpServerChannel
        return HttpServerChannel(conn, sink, clock=clock)
    if isinstance(conn, SMTPConfig):
        from appliance.provider.smtp import SmtpChannel
        return SmtpChannel(conn, sink, clock=clock)
    return None
