"""Reviews the shop collects itself: storage, moderation and publishing.

- ``models``: the ``product_reviews`` table (one review per order and product).
- ``collecting``: what an order's review page offers, and storing what it posts (with the
  ``review.submitted`` event written to the inbox in the same transaction).
- ``moderation``: which texts are held for a person, and approving or rejecting them.
- ``publishing``: the public JSON of published reviews and the Google Product Reviews feed.
"""
