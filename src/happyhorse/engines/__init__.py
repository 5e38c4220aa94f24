"""Engines turn one shot into frames and, optionally, audio. See ``base`` for the seam."""
