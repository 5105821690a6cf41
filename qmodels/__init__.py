"""Quantum models and circuits: no files, no orchestration, only torch and Qiskit."""
