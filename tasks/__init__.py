"""Pipeline stages: typed params in, files out."""
