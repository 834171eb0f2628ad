"""Dispatch: sending due touchpoints, in two halves.

- ``running``: ``claim_chunks`` takes due touchpoints in chunks, each under its own claimant
  name, so a mapped task per chunk can run on any worker; ``Dispatcher.run_chunk`` works a
  chunk through the two halves below with a few sends in flight at once.
- deciding (``deciding``, ``gates``): skip a touchpoint with the reason (expiry, cancel rules,
  points, consent, suppression, smart sending), defer an SMS past quiet hours, or render it.
- sending and recording (``sending``): hand the message to its provider, then write how each
  touchpoint ended (sent, failed, unknown, or back for a later round).
- ``notes``: what a dispatch run tells ops in its run note.
- ``previews``: a campaign's messages rendered as they would be sent, in every locale, about
  the sample or a real order, for the campaigns page.

``outcomes`` holds what passes between the halves.
"""

from postpurchase.dispatch.deciding import CampaignLookup, GatePolicy, MessageSpec
from postpurchase.dispatch.running import Dispatcher, claim_chunks, summarize

__all__ = [
    "CampaignLookup",
    "Dispatcher",
    "GatePolicy",
    "MessageSpec",
    "claim_chunks",
    "summarize",
]
