"""Reusable fixtures: a tiny synthetic corpus in ESPnet's data format, a tiny
VITS configuration and helpers that run ESPnet's real command-line tools.

Nothing here touches the network: the text is tokenized by characters and the
audio is synthesized (harmonic tones with a gliding pitch plus a little noise).

Typical use::

    corpus = write_corpus(tmp_path / "corpus")
    config = write_config(tmp_path / "train.yaml", tiny_train_config())
    stats = collect_stats(corpus, config, tmp_path / "stats")
    run_module("espnet2.bin.gan_tts_train",
               train_args(corpus, config, stats, tmp_path / "exp"))
"""

import copy
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import soundfile as sf
import yaml

FS = 16000
HOP_LENGTH = 128
SEGMENT_FRAMES = 16

TEXTS = (
    "a tiny corpus",
    "hello plugin",
    "six short lines",
    "for the tests",
    "we train twice",
    "then we speak",
)

TOKEN_SYMBOLS = ("<blank>:0", "<unk>:1", "<sos/eos>:-1")


@dataclass(frozen=True)
class TinyCorpus:
    """Paths of a corpus written by ``write_corpus``.

    Attributes:
        root (Path): Directory holding everything.
        train_dir (Path): Kaldi-style directory with ``wav.scp`` and ``text``.
        valid_dir (Path): Same for the validation set.
        token_list (Path): Character token list made by ESPnet's tokenizer.
        fs (int): Sampling rate of the audio.

    """

    root: Path
    train_dir: Path
    valid_dir: Path
    token_list: Path
    fs: int


def synthesize(num_samples: int, seed: int, fs: int = FS) -> np.ndarray:
    """Make a speech-like test signal.

    Args:
        num_samples (int): Length in samples.
        seed (int): Seed of the pitch, the harmonic weights and the noise.
        fs (int): Sampling rate.

    Returns:
        ndarray: Float32 waveform (num_samples,) in [-0.5, 0.5].

    """
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / fs
    f0 = rng.uniform(100.0, 220.0) * (1.0 + 0.2 * t / t[-1])
    phase = 2.0 * np.pi * np.cumsum(f0) / fs
    weights = rng.uniform(0.2, 1.0, size=6) / np.arange(1, 7)
    wave = sum(w * np.sin((k + 1) * phase) for k, w in enumerate(weights))
    wave = wave * np.hanning(num_samples) ** 0.25
    wave = wave + 0.01 * rng.standard_normal(num_samples)
    return (0.45 * wave / np.max(np.abs(wave))).astype(np.float32)


def _write_set(directory: Path, wav_dir: Path, items: Sequence[tuple], fs: int):
    directory.mkdir(parents=True, exist_ok=True)
    wav_dir.mkdir(parents=True, exist_ok=True)
    scp_lines, text_lines = [], []
    for utt_id, text, seed in items:
        num_samples = int(fs * (0.5 + 0.03 * len(text)))
        path = wav_dir / f"{utt_id}.wav"
        sf.write(path, synthesize(num_samples, seed, fs), fs, subtype="PCM_16")
        scp_lines.append(f"{utt_id} {path}\n")
        text_lines.append(f"{utt_id} {text}\n")
    (directory / "wav.scp").write_text("".join(scp_lines))
    (directory / "text").write_text("".join(text_lines))


def write_corpus(root: Path, num_valid: int = 2, fs: int = FS) -> TinyCorpus:
    """Write a six-utterance corpus and its character token list.

    Args:
        root (Path): Output directory (created).
        num_valid (int): How many of the six utterances form the validation
            set; the rest are the training set.
        fs (int): Sampling rate of the audio.

    Returns:
        TinyCorpus: The paths written.

    """
    root = Path(root)
    items = [(f"utt{i:02d}", text, i) for i, text in enumerate(TEXTS)]
    train_dir, valid_dir = root / "data" / "train", root / "data" / "valid"
    _write_set(train_dir, root / "wav", items[num_valid:], fs)
    _write_set(valid_dir, root / "wav", items[:num_valid], fs)
    token_list = root / "tokens.txt"
    symbols = [arg for s in TOKEN_SYMBOLS for arg in ("--add_symbol", s)]
    run_module(
        "espnet2.bin.tokenize_text",
        [
            "--token_type",
            "char",
            "-f",
            "2-",
            "--input",
            str(train_dir / "text"),
            "--output",
            str(token_list),
            "--write_vocabulary",
            "true",
            *symbols,
        ],
    )
    return TinyCorpus(root, train_dir, valid_dir, token_list, fs)


TINY_GENERATOR_PARAMS: Dict = {
    "hidden_channels": 16,
    "spks": -1,
    "global_channels": -1,
    "segment_size": SEGMENT_FRAMES,
    "text_encoder_attention_heads": 2,
    "text_encoder_ffn_expand": 2,
    "text_encoder_blocks": 1,
    "text_encoder_positionwise_layer_type": "conv1d",
    "text_encoder_positionwise_conv_kernel_size": 1,
    "text_encoder_positional_encoding_layer_type": "rel_pos",
    "text_encoder_self_attention_layer_type": "rel_selfattn",
    "text_encoder_activation_type": "relu",
    "text_encoder_normalize_before": True,
    "use_macaron_style_in_text_encoder": False,
    "use_conformer_conv_in_text_encoder": False,
    "decoder_kernel_size": 7,
    "decoder_channels": 32,
    "decoder_upsample_scales": [8, 4, 4],
    "decoder_upsample_kernel_sizes": [16, 8, 8],
    "decoder_resblock_kernel_sizes": [3],
    "decoder_resblock_dilations": [[1, 3]],
    "posterior_encoder_layers": 2,
    "flow_flows": 1,
    "flow_layers": 1,
    "stochastic_duration_predictor_flows": 1,
    "stochastic_duration_predictor_dds_conv_layers": 1,
}

TINY_MEL_LOSS_PARAMS: Dict = {
    "fs": FS,
    "n_fft": 512,
    "hop_length": HOP_LENGTH,
    "win_length": 512,
    "n_mels": 40,
    "fmin": 0,
    "fmax": None,
}


def tiny_train_config(
    tts: str = "vits",
    discriminator_type: Optional[str] = None,
    discriminator_params: Optional[Dict] = None,
) -> Dict:
    """Return a tiny GAN-TTS training configuration (a dict for YAML).

    The generator is a few-thousand-parameter VITS (hop 128 at 16 kHz,
    segments of 16 frames = 2048 samples); one epoch is two iterations of
    batch 2. ``tts: vits`` uses ESPnet's mel loss settings, ``tts: sovits``
    the plugin's GPT-SoVITS mel loss at 16 kHz.

    Args:
        tts (str): ``vits`` or ``sovits``.
        discriminator_type (Optional[str]): Put into ``tts_conf`` when given.
        discriminator_params (Optional[Dict]): Put into ``tts_conf`` when given.

    Returns:
        Dict: The configuration.

    """
    tts_conf: Dict = {
        "sampling_rate": FS,
        "generator_type": "vits_generator",
        "generator_params": copy.deepcopy(TINY_GENERATOR_PARAMS),
    }
    if tts == "vits":
        tts_conf["mel_loss_params"] = {
            "fs": FS,
            "n_fft": 512,
            "hop_length": HOP_LENGTH,
            "win_length": 512,
            "window": "hann",
            "n_mels": 40,
            "fmin": 0,
            "fmax": None,
            "log_base": None,
        }
    else:
        tts_conf["mel_loss_params"] = copy.deepcopy(TINY_MEL_LOSS_PARAMS)
    if discriminator_type is not None:
        tts_conf["discriminator_type"] = discriminator_type
    if discriminator_params is not None:
        tts_conf["discriminator_params"] = copy.deepcopy(discriminator_params)
    adamw = {"lr": 2.0e-4, "betas": [0.8, 0.99], "eps": 1.0e-9}
    return {
        "tts": tts,
        "tts_conf": tts_conf,
        "feats_extract": "linear_spectrogram",
        "feats_extract_conf": {
            "n_fft": 512,
            "hop_length": HOP_LENGTH,
            "win_length": 512,
        },
        "normalize": None,
        "max_epoch": 1,
        "num_iters_per_epoch": 2,
        "batch_type": "unsorted",
        "batch_size": 2,
        "num_workers": 0,
        "keep_nbest_models": 1,
        "num_att_plot": 0,
        "best_model_criterion": [["train", "total_count", "max"]],
        "seed": 0,
        "use_amp": False,
        "grad_clip": -1,
        "generator_first": False,
        "optim": "adamw",
        "optim_conf": dict(adamw),
        "optim2": "adamw",
        "optim2_conf": dict(adamw),
        "scheduler": "exponentiallr",
        "scheduler_conf": {"gamma": 0.999875},
        "scheduler2": "exponentiallr",
        "scheduler2_conf": {"gamma": 0.999875},
    }


def write_config(path: Path, config: Dict) -> Path:
    """Write a configuration dict as YAML and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def run_module(
    module: str,
    args: Sequence[str],
    cwd: Optional[Path] = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` with this interpreter.

    Args:
        module (str): Module to run, e.g. ``espnet2.bin.gan_tts_train``.
        args (Sequence[str]): Its arguments.
        cwd (Optional[Path]): Working directory.
        timeout (float): Seconds before the process is killed.

    Returns:
        CompletedProcess: The finished process (stdout and stderr as text).

    Raises:
        AssertionError: If the process fails; the message holds the command
            and the end of its output.

    """
    command = [sys.executable, "-m", module, *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(command)}\n"
            f"--- stdout ---\n{proc.stdout[-3000:]}\n"
            f"--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def data_args(corpus: TinyCorpus) -> List[str]:
    """Data, token and preprocessing arguments shared by every stage."""
    args = [
        "--use_preprocessor",
        "true",
        "--token_type",
        "char",
        "--token_list",
        str(corpus.token_list),
        "--non_linguistic_symbols",
        "none",
        "--cleaner",
        "none",
        "--g2p",
        "none",
    ]
    for split, directory in (("train", corpus.train_dir), ("valid", corpus.valid_dir)):
        args += [
            f"--{split}_data_path_and_name_and_type",
            f"{directory}/text,text,text",
            f"--{split}_data_path_and_name_and_type",
            f"{directory}/wav.scp,speech,sound",
        ]
    return args


def collect_stats(
    corpus: TinyCorpus,
    config: Path,
    output_dir: Path,
    module: str = "espnet2.bin.gan_tts_train",
    extra_args: Sequence[str] = (),
) -> Path:
    """Run the collect-stats stage; return its output directory.

    Args:
        corpus (TinyCorpus): The corpus.
        config (Path): Training configuration.
        output_dir (Path): Where ``train/`` and ``valid/`` stats go.
        module (str): Training entry point to run.
        extra_args (Sequence[str]): Further arguments.

    Returns:
        Path: ``output_dir``.

    """
    run_module(
        module,
        [
            "--collect_stats",
            "true",
            "--config",
            str(config),
            *data_args(corpus),
            "--train_shape_file",
            str(corpus.train_dir / "wav.scp"),
            "--valid_shape_file",
            str(corpus.valid_dir / "wav.scp"),
            "--output_dir",
            str(output_dir),
            *extra_args,
        ],
    )
    return Path(output_dir)


class PreparedCorpus(NamedTuple):
    """A corpus ready for training with the plugin's trainer.

    Attributes:
        corpus (TinyCorpus): The corpus.
        config (Path): A ``tts: sovits`` configuration (tensorboard and
            attention plots off).
        stats (Path): Its collected statistics.

    """

    corpus: TinyCorpus
    config: Path
    stats: Path


def prepare_corpus(corpus: TinyCorpus, root: Path) -> PreparedCorpus:
    """Write a ``tts: sovits`` config under ``root`` and collect its statistics.

    Args:
        corpus (TinyCorpus): The corpus.
        root (Path): Where the config and ``stats/`` go.

    Returns:
        PreparedCorpus: The corpus, the config and the statistics directory.

    """
    config = tiny_train_config("sovits")
    config.update(use_tensorboard=False, num_att_plot=0)
    config_path = write_config(Path(root) / "sovits.yaml", config)
    stats = collect_stats(
        corpus,
        config_path,
        Path(root) / "stats",
        module="espnet_sovits_disc.bin.gan_tts_train",
    )
    return PreparedCorpus(corpus, config_path, stats)


def train_args(
    corpus: TinyCorpus,
    config: Path,
    stats_dir: Path,
    output_dir: Path,
) -> List[str]:
    """Arguments of a training run on collected stats.

    One ``--fold_length`` per shape file (text, then speech), as ESPnet
    requires.

    Args:
        corpus (TinyCorpus): The corpus.
        config (Path): Training configuration.
        stats_dir (Path): Output of ``collect_stats``.
        output_dir (Path): Experiment directory.

    Returns:
        List[str]: Arguments for ``espnet2.bin.gan_tts_train`` or the plugin's
            entry point.

    """
    stats_dir = Path(stats_dir)
    args = ["--config", str(config), *data_args(corpus)]
    for split in ("train", "valid"):
        args += [
            f"--{split}_shape_file",
            str(stats_dir / split / "text_shape"),
            f"--{split}_shape_file",
            str(stats_dir / split / "speech_shape"),
        ]
    args += [
        "--fold_length",
        "150",
        "--fold_length",
        "204800",
        "--output_dir",
        str(output_dir),
    ]
    return args
