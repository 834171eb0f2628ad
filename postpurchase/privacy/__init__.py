"""Privacy: customers' data exported on request, erased on request, and personal fields
dropped from stored payloads after the retention period.

- ``personal``: which stored fields are personal, and the SQL that drops them;
- ``erasure``: one customer's (or one shop's) personal data removed everywhere it lives;
- ``export``: everything held about one customer, as one JSON document;
- ``delivery``: where an export goes (a folder, or an email to the shop's privacy contact);
- ``requests``: Shopify's compliance webhooks as inbox rows, and their fulfilment;
- ``generic_requests``: the signed generic route's requests, from other platforms;
- ``retention``: the pass over old processed payloads and provider event details;
- ``runs``: the housekeeping DAG's privacy step (fulfil waiting requests, then retention).
"""
