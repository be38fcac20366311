"""Orchestration: plans units of work, runs stages and publishes; the ``carbonsink`` CLI."""
