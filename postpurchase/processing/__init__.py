"""Turning inbox events into customers, orders and scheduled touchpoints.

``drain.process_inbox`` drains the inbox in claimed batches; ``records`` upserts what the
events describe; ``planning`` plans (with ``campaigns.decisions``) and cancels touchpoints;
``followups`` plans what no event announces (assumed deliveries, lapsed customers).
"""
