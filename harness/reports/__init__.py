"""Reports over run directories: the leaderboard (markdown, CSV, HTML), comparisons of two
runs (paired bootstrap, McNemar), figures, the analysis of the paper's claims, and text
tables for the terminal."""
