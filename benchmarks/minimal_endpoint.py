"""The intake benchmark's floor: a FastAPI app whose one route reads the body and answers 202.

It is served by the same code and settings as ``postpurchase serve`` (one ``SO_REUSEPORT``
socket per uvicorn worker, no access log), so what the intake costs above it is the intake's
own work: signature, parsing, normalising, storing.

Run: ``python -m benchmarks.minimal_endpoint PORT WORKERS``.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from postpurchase.webhooks.server import serve


def create_app() -> FastAPI:
    app = FastAPI()

    async def accept(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "accepted"}, status_code=202)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    # Plain Starlette routes, as the intake's own are.
    app.add_route("/webhooks/shopify", accept, methods=["POST"])
    app.add_route("/webhooks/health", health, methods=["GET"])
    return app


if __name__ == "__main__":
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    app = "benchmarks.minimal_endpoint:create_app"
    sys.exit(serve(host="127.0.0.1", port=port, workers=workers, access_log=False, app=app))
