"""Multi-dimensional models (placeholder until written)."""
from .base import Model


class ConicalIntersection2D(Model):
    name = "conical2d"


class SpinBoson(Model):
    name = "spin_boson"
