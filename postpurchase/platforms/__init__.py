"""Normalisers from each platform's webhook JSON to ``postpurchase.events.CanonicalEvent``."""
