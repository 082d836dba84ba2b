"""GPT-SoVITS's phoneme inventories, as data.

``symbols_v1.txt`` (``text/symbols.py``, 322 symbols: the sorted set of
Mandarin, Japanese, English and punctuation symbols) and ``symbols_v2.txt``
(``text/symbols2.py``, 732: that base set grown, then ``[``, ``]``, Korean,
Cantonese) hold one symbol per line in the reference's order: a symbol's line
number is its id in ``enc_p.text_embedding`` and in the recipes' ``text_int``
files, and the file is their ESPnet token list. v1 models use the first,
v2, v2Pro and v2ProPlus the second.
"""

from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

V1_INVENTORY_FILE = Path(__file__).with_name("symbols_v1.txt")
V2_INVENTORY_FILE = Path(__file__).with_name("symbols_v2.txt")

INVENTORY_FILES = {
    "v1": V1_INVENTORY_FILE,
    "v2": V2_INVENTORY_FILE,
    "v2Pro": V2_INVENTORY_FILE,
    "v2ProPlus": V2_INVENTORY_FILE,
}
"""Each GPT-SoVITS version's token list."""


def inventory_file(version: str) -> Path:
    """The token list of a GPT-SoVITS version.

    Args:
        version (str): ``v1``, ``v2``, ``v2Pro`` or ``v2ProPlus``.

    Returns:
        Path: The version's symbol file (one symbol per line).

    Raises:
        ValueError: If the version is unknown.

    """
    if version not in INVENTORY_FILES:
        raise ValueError(
            f"unknown GPT-SoVITS version {version!r}; choose one of "
            f"{sorted(INVENTORY_FILES)}"
        )
    return INVENTORY_FILES[version]


@lru_cache(maxsize=None)
def inventory(version: str) -> Tuple[str, ...]:
    """A version's symbols, index = id."""
    return tuple(inventory_file(version).read_text(encoding="utf-8").split("\n")[:-1])


@lru_cache(maxsize=None)
def inventory_ids(version: str) -> Dict[str, int]:
    """A version's symbol -> id."""
    return {symbol: index for index, symbol in enumerate(inventory(version))}
