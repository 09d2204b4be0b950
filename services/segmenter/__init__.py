"""The segmenter service: Segment Anything (SAM) lesion masks and regions of interest."""
