"""GPT-SoVITS's v2 phoneme inventory (``text/symbols2.py``), as data.

``symbols_v2.txt`` holds the 732 symbols one per line in the reference's
order (sorted base set, ``[``, ``]``, Korean, Cantonese): a symbol's line
number is its id in ``enc_p.text_embedding`` and in the recipes' ``text_int``
files, and the file is their ESPnet token list.
"""

from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

SYMBOLS_FILE = Path(__file__).with_name("symbols_v2.txt")


@lru_cache(maxsize=None)
def v2_symbols() -> Tuple[str, ...]:
    """The 732 symbols, index = id."""
    return tuple(SYMBOLS_FILE.read_text(encoding="utf-8").split("\n")[:-1])


@lru_cache(maxsize=None)
def v2_symbol_ids() -> Dict[str, int]:
    """Symbol -> id."""
    return {symbol: index for index, symbol in enumerate(v2_symbols())}
