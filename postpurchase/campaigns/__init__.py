"""Campaigns as configuration: models and validation of ``config/campaigns.yaml``
(``config``, ``validation``), delays and send windows (``timing``), ``when`` conditions
(``conditions``), template checks against sample data (``template_check``, ``samples``), and
the preview of an order's touchpoints (``timeline``).
"""
