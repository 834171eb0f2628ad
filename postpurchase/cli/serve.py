"""``postpurchase serve``: the webhook app on its own uvicorn server, to scale intake apart
from Airflow's API server (which serves the same routes under ``/postpurchase``)."""

from __future__ import annotations

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (about one per core).",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log one line per request (method, path, status; never bodies).",
)
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the webhook routes (/webhooks/shopify, /webhooks/woocommerce, /webhooks/events,
    /webhooks/health) with uvicorn. Settings and the database are checked before listening."""
    from postpurchase.cli.db import open_database
    from postpurchase.messages.tokens import signing_keys
    from postpurchase.settings import load_settings
    from postpurchase.webhooks.server import serve as serve_webhooks

    # Fail now, with one clear line, rather than on the first webhook or link.
    open_database().dispose()
    signing_keys(load_settings())
    click.echo(f"serving webhooks on http://{host}:{port}/webhooks/ with {workers} worker(s)")
    status = serve_webhooks(host=host, port=port, workers=workers, access_log=access_log)
    if status:
        raise SystemExit(status)
