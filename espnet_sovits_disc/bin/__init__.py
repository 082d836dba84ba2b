"""Command-line entry points (``python -m espnet_sovits_disc.bin.<name>``)."""
