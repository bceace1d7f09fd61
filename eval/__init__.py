"""Eval by replay: cases, scoring against truth, the runner and ablation."""
