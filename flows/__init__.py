"""Prefect flows wiring the stages."""
