"""qaug: error-driven QGAN data augmentation pipeline for hybrid quantum-classical classifiers."""

__version__ = "0.1.0"
