"""Campaigns as configuration: models and validation of ``config/campaigns.yaml``
(``config``, ``validation``), delays and send windows (``timing``), ``when`` conditions
(``conditions``), template checks against sample data (``template_check``, ``samples``), and
the preview of an order's touchpoints (``timeline``); campaigns said in words for people
(``wording``) and each campaign's state (``states``: enabled, disabled, paused, invalid).
"""

# The modules other packages import; the rest are this package's own.
__all__ = [
    "conditions",
    "config",
    "decisions",
    "experiments",
    "states",
    "timeline",
    "timing",
    "validation",
    "wording",
]
