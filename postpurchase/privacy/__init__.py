"""Privacy: customers' data exported on request, erased on request, and personal fields
dropped from stored payloads after the retention period.

- ``personal``: which stored fields are personal, and the SQL that drops them;
- ``erasure``: one customer's (or one shop's) personal data removed everywhere it lives;
- ``export``: everything held about one customer, as one JSON document;
- ``requests``: Shopify's compliance webhooks as inbox rows, and their fulfilment;
- ``retention``: the pass over old processed payloads and provider event details;
- ``runs``: the housekeeping DAG's privacy step (fulfil waiting requests, then retention).
"""
