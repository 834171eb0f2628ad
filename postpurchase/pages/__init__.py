"""Pages for people inside the Airflow UI: health for ops, customers for support, campaigns
and KPIs for marketers.

A FastAPI app of server-rendered HTML (Jinja, inline SVG charts, one local stylesheet, no
script from anywhere), mounted by the plugin at ``/postpurchase/pages`` and listed in the UI's
navigation as external views. Airflow puts no login in front of a plugin's app, so every route
resolves the user from Airflow's own JWT and asks Airflow's auth manager what they may do
(``auth``).
"""
