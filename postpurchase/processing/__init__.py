"""Turning inbox events into customers, orders and scheduled touchpoints.

``inbox.process_inbox`` drains the inbox in claimed batches; ``records`` upserts what the
events describe; ``planning`` plans and cancels touchpoints from the campaign config;
``followups`` plans what no event announces (assumed deliveries, lapsed customers).
"""
