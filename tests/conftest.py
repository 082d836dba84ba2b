"""Session fixtures shared by the test modules: the tiny corpus, the corpus
prepared for the plugin's trainer, and a character token list."""

from pathlib import Path

import pytest

from tests.tiny_corpus import PreparedCorpus, TinyCorpus, prepare_corpus, write_corpus

# The characters of ESPnet's char token lists for English text.
CHARACTERS = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,"))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> TinyCorpus:
    """The synthetic corpus in ESPnet's data format, written once."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def prepared_corpus(tiny_corpus, tmp_path_factory) -> PreparedCorpus:
    """The tiny corpus with a ``tts: sovits`` config (tensorboard and
    attention plots off) and its statistics collected by the plugin's trainer."""
    return prepare_corpus(tiny_corpus, tmp_path_factory.mktemp("prepared"))


@pytest.fixture(scope="session")
def token_list(tmp_path_factory) -> Path:
    """A character token list (``token_type: char``) covering English text."""
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text("\n".join(["<blank>", "<unk>", "<space>", *CHARACTERS, "<sos/eos>"]))
    return path
