"""Outcomes: what each campaign achieves, measured against a holdout.

- ``assignment``: the stable arm (treatment or holdout) and A/B variant of a customer.
- ``clicks``: first-party click links (``/c/{token}``) and scanner detection.
- ``refresh``: set-based refresh of the aggregate tables (funnel, attributed orders).
- ``uplift``: difference of two proportions with its 95% confidence interval, as a verdict.
- ``kpis``: the shop's numbers (repeat purchase rate, CSAT, NPS, review rate, points).
- ``guard``: pauses a campaign whose complaints or bounces pass the bulk-sender limits.
- ``report``: what ``postpurchase report`` and the ``measure_outcomes`` DAG show.
"""
