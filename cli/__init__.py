"""The ``qaug`` command line: outside the qaug/ toolkit, as it drives the stages (tasks/), grids (grid/) and flows
(flows/) that build on that toolkit; entry point :func:`cli.main.main`."""
