"""Spending points: the rewards catalogue, redemptions (a ledger debit and a single-use code on
the shop's platform), codes followed to the order that used them, and where customers spend.
"""
