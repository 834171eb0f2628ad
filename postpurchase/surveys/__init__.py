"""What customers answer in surveys (NPS 0-10, the 1-5 check-in) and what happens next.

- ``models``: ``nps_responses`` (one per touchpoint) and ``support_notifications``.
- ``answers``: storing an NPS answer with its comment.
- ``negative``: a detractor, a CSAT of 1-2 or a 1-2 star review emits ``feedback.negative``
  and queues one notification to the support team.
- ``notify``: sending those notifications (email and/or signed webhook), each at most once.
"""
