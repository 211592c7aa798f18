"""fairbench: benchmark suite and leaderboard harness for fair dataset distillation."""

__version__ = "0.1.0"
