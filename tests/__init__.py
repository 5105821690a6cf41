"""qaug tests (a regular package: torch-fidelity installs a top-level ``tests`` package that would shadow a namespace one)."""
