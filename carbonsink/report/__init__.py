"""Figures and the one-page HTML report of the budget."""
