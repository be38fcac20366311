"""Composite flows: ``run``, ``nrt`` and ``backfill``.

Each decides which months need which stage and calls the stages in order; every stage
publishes on its own.
"""
