"""The tiny corpus prepared for ``tts: gpt_sovits``: 32 kHz audio, GPT-SoVITS
phoneme ids (``text_int``), stand-in HuBERT features (``ssl_feats``, one
frame short of the spectrogram as real extraction leaves them) and, for
v2Pro, speaker-verification embeddings (``spembs``), with a small
configuration at MRTE's reference width and the arguments of every stage.
"""

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile as sf
import yaml

from espnet_sovits_disc.gpt_sovits.symbols import inventory_file
from espnet_sovits_disc.tasks.gan_tts import GANTTSTask
from tests.tiny_corpus import TinyCorpus, tiny_train_config, write_corpus

FS = 32000
HOP = 640
SSL_DIM = 768
SV_DIM = 20480

TINY_SYNTHESIZER = {
    "filter_channels": 192,
    "n_layers": 2,
    "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "segment_size": 8,
}
"""A small SynthesizerTrn: MRTE fixes 192 hidden channels, the rest shrinks."""


@dataclass(frozen=True)
class GPTSoVITSCorpus:
    """The corpus and its GPT-SoVITS data files.

    Attributes:
        corpus (TinyCorpus): The 32 kHz audio (``wav.scp``) per split.
        version (str): ``v2`` or ``v2Pro`` (which adds ``spembs.scp``).

    """

    corpus: TinyCorpus
    version: str

    def split_dir(self, split: str) -> Path:
        return {"train": self.corpus.train_dir, "valid": self.corpus.valid_dir}[split]

    def data_args(self) -> List[str]:
        """Token and data arguments of ``gan_tts_train`` for both splits."""
        args = [
            "--use_preprocessor",
            "false",
            "--token_type",
            "phn",
            "--token_list",
            str(inventory_file(self.version)),
        ]
        for split in ("train", "valid"):
            for triple in self.triples(split):
                args += [f"--{split}_data_path_and_name_and_type", triple]
        return args

    def triples(self, split: str) -> List[str]:
        """ESPnet data triples of one split (text, speech, ssl_feats, spembs)."""
        directory = self.split_dir(split)
        triples = [
            f"{directory}/text_int,text,text_int",
            f"{directory}/wav.scp,speech,sound",
            f"{directory}/ssl_feats.scp,ssl_feats,npy",
        ]
        if self.version == "v2Pro":
            triples.append(f"{directory}/spembs.scp,spembs,npy")
        return triples


def write_gpt_sovits_corpus(root: Path, version: str = "v2") -> GPTSoVITSCorpus:
    """Write the six-utterance corpus at 32 kHz and its GPT-SoVITS data.

    Args:
        root (Path): Output directory.
        version (str): ``v2`` or ``v2Pro``.

    Returns:
        GPTSoVITSCorpus: The paths written.

    """
    corpus = write_corpus(Path(root), fs=FS)
    rng = np.random.default_rng(17)
    features = Path(root) / "features"
    features.mkdir()
    for directory in (corpus.train_dir, corpus.valid_dir):
        text_int, ssl_scp, sv_scp = [], [], []
        for line in (directory / "text").read_text().splitlines():
            utt, text = line.split(" ", 1)
            ids = rng.integers(1, 732, size=len(text))
            text_int.append(f"{utt} {' '.join(map(str, ids))}\n")
        for line in (directory / "wav.scp").read_text().splitlines():
            utt, wav = line.split(" ", 1)
            frames = sf.info(wav).frames // HOP
            ssl = rng.standard_normal((frames - 1, SSL_DIM)).astype(np.float32)
            np.save(features / f"{utt}_ssl.npy", ssl)
            ssl_scp.append(f"{utt} {features / f'{utt}_ssl.npy'}\n")
            sv = rng.standard_normal(SV_DIM).astype(np.float32)
            np.save(features / f"{utt}_sv.npy", sv)
            sv_scp.append(f"{utt} {features / f'{utt}_sv.npy'}\n")
        (directory / "text_int").write_text("".join(text_int))
        (directory / "ssl_feats.scp").write_text("".join(ssl_scp))
        if version == "v2Pro":
            (directory / "spembs.scp").write_text("".join(sv_scp))
    return GPTSoVITSCorpus(corpus, version)


def gpt_sovits_train_config(version: str = "v2") -> Dict:
    """The tiny GAN-TTS configuration with ``tts: gpt_sovits`` of ``version``
    (sovits_mpd of the same version; tensorboard and plots off)."""
    config = tiny_train_config()
    for key in ("feats_extract", "feats_extract_conf", "normalize"):
        config.pop(key)
    config["tts"] = "gpt_sovits"
    config["tts_conf"] = {
        "version": version,
        "generator_params": copy.deepcopy(TINY_SYNTHESIZER),
    }
    config.update(use_tensorboard=False, num_att_plot=0)
    return config


def build_gpt_sovits_model(config: Path, output_dir: Path, *extra: str):
    """The arguments and model that the plugin's GANTTSTask builds from a
    ``tts: gpt_sovits`` config (its version's phoneme symbols as tokens)."""
    version = yaml.safe_load(config.read_text())["tts_conf"].get("version", "v2")
    args = GANTTSTask.get_parser().parse_args(
        [
            "--config",
            str(config),
            "--token_list",
            str(inventory_file(version)),
            "--token_type",
            "phn",
            "--use_preprocessor",
            "false",
            "--output_dir",
            str(output_dir),
            *extra,
        ]
    )
    return args, GANTTSTask.build_model(args)
