"""The benchmark harness: recipes side by side on one holdout split under a time budget (see README.md)."""
