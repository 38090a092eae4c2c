"""Evaluation: fixed protocols, metrics and the method interface every reconstructor implements."""
