"""Airflow plugin: mounts the postpurchase webhook app into the API server at /postpurchase,
and the pages for people at /postpurchase/pages, listed in the UI's navigation.

Plugins load when an Airflow process starts; a change here needs a restart of the API server.
Mounted apps get no Airflow authentication: the webhook routes check their own signatures, and
every page asks Airflow's auth manager who the user is and what they may do.
"""

from airflow.plugins_manager import AirflowPlugin

from postpurchase.pages.app import PAGES, create_pages_app
from postpurchase.webhooks.app import create_app

PAGES_PREFIX = "/postpurchase/pages"


class PostpurchasePlugin(AirflowPlugin):
    name = "postpurchase"
    # The pages first: the API server mounts in this order, and "/postpurchase" would
    # otherwise take "/postpurchase/pages/..." too.
    fastapi_apps = [
        {"app": create_pages_app(), "url_prefix": PAGES_PREFIX, "name": "postpurchase pages"},
        {"app": create_app(), "url_prefix": "/postpurchase", "name": "postpurchase webhooks"},
    ]
    external_views = [
        {
            "name": name,
            "href": f"{PAGES_PREFIX}/{route}",
            "url_route": url_route,
            "destination": "nav",
            "category": "Post-purchase",
        }
        for name, route, url_route in PAGES
    ]
