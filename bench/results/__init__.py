"""Records and what is derived from them: the record schema, provenance, the leaderboard's
statistics and summaries, publishing to ``reports/`` and verifying published records.
"""
