"""Airflow plugin: mounts the postpurchase webhook app into the API server at /postpurchase.

Plugins load when an Airflow process starts; a change here needs a restart of the API server.
The mounted app gets no Airflow authentication, so every route checks its own signatures.
"""

from airflow.plugins_manager import AirflowPlugin

from postpurchase.webhooks.app import create_app


class PostpurchasePlugin(AirflowPlugin):
    name = "postpurchase"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": "/postpurchase", "name": "postpurchase webhooks"}
    ]
