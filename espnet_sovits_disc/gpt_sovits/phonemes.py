"""English text to GPT-SoVITS phoneme ids, as ``text/english.py`` makes them.

GPT-SoVITS normalises the punctuation (``;:，；`` to ``,``, curly quotes to
``'``, CJK stops to ASCII, a punctuation run after a space or another mark
reduced to its first), runs an ARPAbet g2p over the whole text, drops word
spaces, sentence markers and the bare ``UW`` the g2p can emit, writes
``<unk>`` as ``UNK``, ``'`` as ``-``, and keeps only symbols of its v2
inventory (``english.py``); a phone outside the model version's inventory
becomes ``UNK`` (``cleaner.py``) and the ids are the symbols' positions in
that inventory (:mod:`.symbols`).

The g2p is a callable from text to phones: by default ``g2p_en``'s ``G2p``
(what ESPnet's ``g2p_en`` tokenizer runs; it needs NLTK's
``averaged_perceptron_tagger_eng`` and ``cmudict`` data). GPT-SoVITS uses its
own extension of the same model, so words outside CMUdict may be spelled
differently.
"""

import re
from typing import Callable, List, Optional, Sequence

from espnet_sovits_disc.gpt_sovits.symbols import inventory_ids

PUNCTUATION = "!?…,.-"

PUNCTUATION_MAP = (("[;:：，；]", ","), ("[\"’]", "'"), ("。", "."), ("！", "!"), ("？", "?"))

DROPPED_PHONES = frozenset({" ", "<pad>", "UW", "</s>", "<s>"})

PHONE_REPLACEMENTS = {"<unk>": "UNK", "'": "-"}


def normalize_english(text: str) -> str:
    """GPT-SoVITS's punctuation normalisation of English text."""
    for pattern, replacement in PUNCTUATION_MAP:
        text = re.sub(pattern, replacement, text)
    marks = re.escape(PUNCTUATION)
    return re.sub(f"([{marks}\\s])([{marks}])+", r"\1", text)


def phoneme_ids(phones: Sequence[str], version: str = "v2") -> List[int]:
    """Ids of a g2p's phones under GPT-SoVITS's rules (see the module).

    Args:
        phones (Sequence[str]): ARPAbet phones with stress digits,
            punctuation, spaces.
        version (str): The model's GPT-SoVITS version (``v1``: its 322-symbol
            inventory; later versions: the 732-symbol one).

    Returns:
        List[int]: Ids into the version's inventory.

    """
    kept, ids = inventory_ids("v2"), inventory_ids(version)
    result = []
    for phone in phones:
        if phone in DROPPED_PHONES:
            continue
        phone = PHONE_REPLACEMENTS.get(phone, phone)
        if phone in kept:
            result.append(ids.get(phone, ids["UNK"]))
    return result


class EnglishPhonemizer:
    """Text to GPT-SoVITS phoneme ids through an ARPAbet g2p."""

    def __init__(
        self,
        g2p: Optional[Callable[[str], Sequence[str]]] = None,
        version: str = "v2",
    ):
        """Initialize EnglishPhonemizer.

        Args:
            g2p (Optional[Callable[[str], Sequence[str]]]): Text to phones;
                ``None`` loads ``g2p_en.G2p`` (NLTK data needed).
            version (str): The model's GPT-SoVITS version (its inventory).

        Raises:
            RuntimeError: If the default g2p cannot load its NLTK data (the
                message names what to download).

        """
        self.g2p = g2p if g2p is not None else _default_g2p()
        self.version = version

    def __call__(self, text: str) -> List[int]:
        """Return the phoneme ids of ``text``.

        Raises:
            ValueError: If nothing of the text is a GPT-SoVITS phoneme.

        """
        ids = phoneme_ids(self.g2p(normalize_english(text)), self.version)
        if not ids:
            raise ValueError(f"no GPT-SoVITS phoneme in {text!r}")
        return ids


def _default_g2p() -> Callable[[str], Sequence[str]]:
    try:
        from g2p_en import G2p

        g2p = G2p()
        g2p("test")
    except LookupError as error:
        raise RuntimeError(
            "g2p_en needs NLTK data that is not installed: run python -c "
            "\"import nltk; nltk.download('averaged_perceptron_tagger_eng'); "
            f"nltk.download('cmudict')\" ({str(error).strip().splitlines()[0]})"
        ) from None
    return g2p
