"""The command modules: one per command group, each a few lines over library calls.

`offline_vision.cli` registers them all in one list."""
