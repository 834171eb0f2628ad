"""Per-shop settings: each shop's brand, zone, currency, locale, links and provider accounts.

One engine may serve several shops (a store per country is common). ``config`` reads
``config/shops.yaml`` (absent: one shop, the engine's settings); ``directory`` resolves a
shop key (the ``shop`` of its customers, orders and touchpoints) into complete settings, the
engine's own filling whatever a shop leaves out.
"""
