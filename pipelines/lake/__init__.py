"""Lake operations, whatever the stores hold.

Transactions on a run's branch, the status of recorded plans, compaction of the history.
"""
