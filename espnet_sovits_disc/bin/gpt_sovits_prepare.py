"""Data of ``tts: gpt_sovits``: phoneme ids, HuBERT features, SV embeddings.

Usage (one set; the recipe runs it for each)::

    # GPT-SoVITS phoneme ids of a Kaldi-style text file -> <dump>/text_int
    python -m espnet_sovits_disc.bin.gpt_sovits_prepare phonemes \\
        --text data/tr_no_dev/text --dump_dir dump/gpt_sovits/tr_no_dev
    # 32 kHz training audio and chinese-hubert-base features -> <dump>/wav.scp,
    # <dump>/ssl_feats.scp (utterances the reference would skip are dropped
    # from every list of the set)
    python -m espnet_sovits_disc.bin.gpt_sovits_prepare features \\
        --wav_scp data/tr_no_dev/wav.scp --dump_dir dump/gpt_sovits/tr_no_dev \\
        --hubert_dir /path/to/chinese-hubert-base
    # v2Pro: precomputed speaker-verification embeddings, <dir>/<utt>.npy
    # (20480,) or GPT-SoVITS's 7-sv_cn/<utt>.wav.pt -> <dump>/spembs.scp
    python -m espnet_sovits_disc.bin.gpt_sovits_prepare sv_embeddings \\
        --dump_dir dump/gpt_sovits/tr_no_dev --sv_emb_dir /path/to/sv_embeddings
"""

import argparse
import pickle
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import soundfile as sf
import torch

from espnet_sovits_disc.gpt_sovits.config import VERSIONS
from espnet_sovits_disc.gpt_sovits.phonemes import EnglishPhonemizer
from espnet_sovits_disc.gpt_sovits.ssl_features import SPEECH_RATE, HuBERTFeatures

SV_EMB_DIM = 20480


def read_table(path: Path) -> Dict[str, str]:
    """``<utt> <value>`` lines as a dict, in file order."""
    table = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, _, value = line.partition(" ")
            table[key] = value.strip()
    return table


def write_table(path: Path, table: Dict[str, str]) -> None:
    Path(path).write_text("".join(f"{k} {v}\n" for k, v in table.items()), encoding="utf-8")


def write_phonemes(text: Path, dump_dir: Path, phonemizer: EnglishPhonemizer) -> int:
    """Write ``<dump_dir>/text_int``; return the number of utterances."""
    dump_dir.mkdir(parents=True, exist_ok=True)
    table = {
        utt: " ".join(map(str, phonemizer(sentence)))
        for utt, sentence in read_table(text).items()
    }
    write_table(dump_dir / "text_int", table)
    return len(table)


def write_features(wav_scp: Path, dump_dir: Path, features: HuBERTFeatures) -> List[str]:
    """Write training audio and features; return the utterances skipped.

    Raises:
        ValueError: If an utterance is not at 32 kHz.

    """
    wav_dir, ssl_dir = dump_dir / "wav", dump_dir / "ssl"
    wav_dir.mkdir(parents=True, exist_ok=True)
    ssl_dir.mkdir(parents=True, exist_ok=True)
    wavs, ssls, skipped = {}, {}, []
    for utt, path in read_table(wav_scp).items():
        audio, rate = sf.read(path, dtype="float32")
        if rate != SPEECH_RATE:
            raise ValueError(
                f"{path} is at {rate} Hz; GPT-SoVITS stage 2 trains on 32 kHz audio: "
                "prepare the data with --fs 32000"
            )
        result = features(audio)
        if result is None:
            skipped.append(utt)
            continue
        speech, ssl = result
        sf.write(wav_dir / f"{utt}.wav", speech, SPEECH_RATE, subtype="PCM_16")
        np.save(ssl_dir / f"{utt}.npy", ssl)
        wavs[utt] = str((wav_dir / f"{utt}.wav").resolve())
        ssls[utt] = str((ssl_dir / f"{utt}.npy").resolve())
    write_table(dump_dir / "wav.scp", wavs)
    write_table(dump_dir / "ssl_feats.scp", ssls)
    text_int = dump_dir / "text_int"
    if text_int.is_file():
        write_table(text_int, {k: v for k, v in read_table(text_int).items() if k in wavs})
    return skipped


def sv_embedding_file(sv_emb_dir: Path, utt: str) -> Path:
    """The embedding of ``utt`` in ``sv_emb_dir``: ``<utt>.npy``, or as
    GPT-SoVITS's ``2-get-sv.py`` names it in ``7-sv_cn/``, ``<utt>.wav.pt``
    (or ``<utt>.pt``).

    Raises:
        ValueError: If there is none.

    """
    names = (f"{utt}.npy", f"{utt}.wav.pt", f"{utt}.pt")
    for name in names:
        if (sv_emb_dir / name).is_file():
            return sv_emb_dir / name
    raise ValueError(
        f"no speaker-verification embedding for {utt} in {sv_emb_dir} (looked for "
        f"{', '.join(names)}): make one per utterance, e.g. with GPT-SoVITS's "
        "prepare_datasets/2-get-sv.py (its 7-sv_cn folder), see the recipe's README"
    )


def read_sv_embedding(path: Path) -> np.ndarray:
    """A (20480,) float32 embedding from a ``.npy`` file or a GPT-SoVITS
    ``.pt`` tensor of shape (1, 20480), read weights-only.

    Raises:
        ValueError: If the file holds anything else.

    """
    if path.suffix == ".npy":
        embedding = np.load(path)
    else:
        try:
            tensor = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(
                f"{path} is not a tensor file a weights-only load reads: {error}"
            ) from error
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{path} holds a {type(tensor).__name__}, not a tensor")
        embedding = tensor.float().numpy()
    if embedding.shape not in ((SV_EMB_DIM,), (1, SV_EMB_DIM)):
        raise ValueError(
            f"{path} has shape {embedding.shape}; v2Pro's sv_emb is ({SV_EMB_DIM},) "
            f"(or (1, {SV_EMB_DIM}) as GPT-SoVITS saves it)"
        )
    return embedding.reshape(SV_EMB_DIM).astype(np.float32)


def write_sv_embeddings(dump_dir: Path, sv_emb_dir: Path) -> None:
    """Write ``<dump_dir>/spembs.scp`` (and ``<dump_dir>/sv_emb/<utt>.npy``)
    for the utterances of its ``wav.scp``.

    Raises:
        ValueError: If an embedding is missing or not 20480 values.

    """
    out_dir = dump_dir / "sv_emb"
    out_dir.mkdir(parents=True, exist_ok=True)
    table = {}
    for utt in read_table(dump_dir / "wav.scp"):
        embedding = read_sv_embedding(sv_embedding_file(Path(sv_emb_dir), utt))
        np.save(out_dir / f"{utt}.npy", embedding)
        table[utt] = str((out_dir / f"{utt}.npy").resolve())
    write_table(dump_dir / "spembs.scp", table)


def get_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_sovits_disc.bin.gpt_sovits_prepare",
        description=__doc__.splitlines()[0],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    phonemes = commands.add_parser("phonemes", help="text -> text_int")
    phonemes.add_argument("--text", type=Path, required=True)
    phonemes.add_argument(
        "--version",
        default="v2",
        choices=VERSIONS,
        help="the model's GPT-SoVITS version: v1 has its own phoneme inventory",
    )
    features = commands.add_parser("features", help="wav.scp -> wav.scp, ssl_feats.scp")
    features.add_argument("--wav_scp", type=Path, required=True)
    features.add_argument("--hubert_dir", type=Path, required=True)
    features.add_argument("--device", default="cpu")
    sv = commands.add_parser("sv_embeddings", help="<dir>/<utt>.npy or <utt>.wav.pt -> spembs.scp")
    sv.add_argument("--sv_emb_dir", type=Path, required=True)
    for command in (phonemes, features, sv):
        command.add_argument("--dump_dir", type=Path, required=True)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; return the exit status."""
    args = get_parser().parse_args(argv)
    try:
        if args.command == "phonemes":
            phonemizer = EnglishPhonemizer(version=args.version)
            count = write_phonemes(args.text, args.dump_dir, phonemizer)
            print(f"wrote {args.dump_dir / 'text_int'}: {count} utterances")
        elif args.command == "features":
            extractor = HuBERTFeatures(args.hubert_dir, args.device)
            skipped = write_features(args.wav_scp, args.dump_dir, extractor)
            note = f"; skipped (peak above 2.2 or silent): {' '.join(skipped)}" if skipped else ""
            print(f"wrote {args.dump_dir / 'ssl_feats.scp'}{note}")
        else:
            write_sv_embeddings(args.dump_dir, args.sv_emb_dir)
            print(f"wrote {args.dump_dir / 'spembs.scp'}")
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"gpt_sovits_prepare {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
