"""Figures: drawn from stored results and explanations, never from recomputed attacks."""
