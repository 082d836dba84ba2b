"""Folders for module-scoped fixtures that are removed when the module ends.

Full-size runs write checkpoints of hundreds of megabytes each (the
reference-width discriminators and GPT-SoVITS generators with their optimizer
states); kept to the end of the session they add up to more disk than a CI
machine may have. Per-test ``tmp_path`` folders go when their test passes
(``tmp_path_retention_policy = failed`` in setup.cfg); these go when their
module's last test is done, passed or not.
"""

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def scratch_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A new folder ``<name><n>`` under pytest's base temp, removed on exit."""
    folder = tmp_path_factory.mktemp(name)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
