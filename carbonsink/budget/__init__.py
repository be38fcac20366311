"""The global carbon budget: sink totals, bias adjustment, the budget identity."""
