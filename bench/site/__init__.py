"""The static leaderboard: page contexts, tables, plots and SVG geometry computed in Python,
rendered through the Jinja templates of ``leaderboard/`` (shipped in the wheel).
"""
