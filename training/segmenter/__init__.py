"""Evaluation of SAM lesion segmenters, and their checkpoints."""
