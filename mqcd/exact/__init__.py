"""Exact grid quantum dynamics (split-operator FFT), the reference for every method."""
EXACT_KEYS = {}
