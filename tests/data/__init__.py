"""Tests of video_structure.data (generators, TFDS builders, windows, video folders, Beam)."""
