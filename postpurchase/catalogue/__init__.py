"""The shop's product catalogue: what order lines do not carry (type, tags, collections,
image, page), from product webhooks (``products``) or the platforms' APIs (``lookup``)."""
