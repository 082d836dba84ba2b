#!/usr/bin/env python3
"""Turn a corpus in LJSpeech 1.1 layout into Kaldi-style data directories.

Input: ``<corpus>/metadata.csv`` (``ID|raw text|normalized text`` per line)
and ``<corpus>/wavs/<ID>.wav``. Output, under ``--data_dir``, one directory
per set with ``wav.scp``, ``text`` (the normalized text), ``utt2spk`` and
``spk2utt`` (a single speaker), sorted by utterance ID as Kaldi expects.

The split follows ESPnet's ``egs2/ljspeech/tts1`` recipe: in utterance-ID
order, the last ``n_dev + n_eval`` utterances are held out, the first
``n_dev`` of them form the development set and the rest the evaluation set;
everything before them is the training set.

Clips whose sampling rate differs from ``--fs`` are resampled (torchaudio's
band-limited sinc resampler) into ``--wav_dir`` as 16-bit PCM; clips already
at ``--fs`` are referenced in place. Existing resampled files of the right
rate are kept, so an interrupted run can be resumed.
"""

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

SPEAKER = "LJ"


class CorpusError(RuntimeError):
    """The corpus directory is missing, malformed or inconsistent."""


def read_metadata(corpus: Path) -> Dict[str, str]:
    """Read ``metadata.csv`` into ``{utterance ID: normalized text}``.

    Args:
        corpus (Path): The corpus directory (holding ``metadata.csv``).

    Returns:
        Dict[str, str]: Normalized transcripts by utterance ID.

    Raises:
        CorpusError: If the file is missing, a line does not have three
            ``|``-separated fields, a transcript is empty or an ID repeats.

    """
    metadata = corpus / "metadata.csv"
    if not metadata.is_file():
        raise CorpusError(f"{metadata} not found: not an LJSpeech-style corpus")
    texts: Dict[str, str] = {}
    with metadata.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) != 3:
                raise CorpusError(
                    f"{metadata}:{number}: expected 'ID|raw text|normalized text', "
                    f"got {len(fields)} field(s)"
                )
            utt_id, _, text = (field.strip() for field in fields)
            if not utt_id or not text or any(c.isspace() for c in utt_id):
                raise CorpusError(f"{metadata}:{number}: empty ID or transcript")
            if utt_id in texts:
                raise CorpusError(f"{metadata}:{number}: duplicate ID {utt_id}")
            texts[utt_id] = " ".join(text.split())
    if not texts:
        raise CorpusError(f"{metadata} lists no utterances")
    return texts


def split_ids(utt_ids: Sequence[str], n_dev: int, n_eval: int) -> Dict[str, List[str]]:
    """Split utterance IDs into training, development and evaluation sets.

    Args:
        utt_ids (Sequence[str]): All utterance IDs (any order).
        n_dev (int): Size of the development set.
        n_eval (int): Size of the evaluation set.

    Returns:
        Dict[str, List[str]]: ``train``, ``dev`` and ``eval`` ID lists, sorted.

    Raises:
        CorpusError: If fewer than one training utterance would remain.

    """
    if n_dev < 0 or n_eval < 0:
        raise CorpusError("n_dev and n_eval must not be negative")
    ids = sorted(utt_ids)
    n_train = len(ids) - n_dev - n_eval
    if n_train < 1:
        raise CorpusError(
            f"{len(ids)} utterance(s) cannot be split into {n_dev} dev, "
            f"{n_eval} eval and at least 1 training utterance"
        )
    return {
        "train": ids[:n_train],
        "dev": ids[n_train : n_train + n_dev],
        "eval": ids[n_train + n_dev :],
    }


def _convert(job: Tuple[Path, Path, int]) -> None:
    """Resample one clip to ``fs`` and write it as mono 16-bit PCM."""
    import soundfile as sf
    import torch
    import torchaudio.functional

    source, target, fs = job
    if target.is_file() and sf.info(str(target)).samplerate == fs:
        return
    audio, source_fs = sf.read(str(source), dtype="float32", always_2d=True)
    wave = torch.from_numpy(audio.mean(axis=1))
    wave = torchaudio.functional.resample(wave, source_fs, fs)
    partial = target.with_suffix(".tmp.wav")
    sf.write(str(partial), wave.clamp(-1.0, 1.0).numpy(), fs, subtype="PCM_16")
    partial.replace(target)


def locate_wavs(
    corpus: Path, utt_ids: Sequence[str], fs: int, wav_dir: Path, nj: int
) -> Dict[str, Path]:
    """Return the path of each clip at ``fs`` Hz, resampling where needed.

    Args:
        corpus (Path): The corpus directory (holding ``wavs/``).
        utt_ids (Sequence[str]): Utterance IDs to locate.
        fs (int): Target sampling rate in Hz.
        wav_dir (Path): Where resampled clips are written.
        nj (int): Number of parallel resampling processes.

    Returns:
        Dict[str, Path]: Absolute paths by utterance ID.

    Raises:
        CorpusError: If a clip listed in the metadata is missing.

    """
    import soundfile as sf

    paths: Dict[str, Path] = {}
    jobs: List[Tuple[Path, Path, int]] = []
    for utt_id in utt_ids:
        source = (corpus / "wavs" / f"{utt_id}.wav").resolve()
        if not source.is_file():
            raise CorpusError(f"{source} is listed in metadata.csv but missing")
        if sf.info(str(source)).samplerate == fs:
            paths[utt_id] = source
        else:
            target = (wav_dir / f"{utt_id}.wav").resolve()
            jobs.append((source, target, fs))
            paths[utt_id] = target
    spaced = [str(p) for p in paths.values() if any(c.isspace() for c in str(p))]
    if spaced:
        raise CorpusError(
            f"wav.scp cannot hold paths with whitespace, e.g. {spaced[0]!r}: "
            "move the corpus (or the recipe's --wav_dir) to a path without spaces"
        )
    if jobs:
        wav_dir.mkdir(parents=True, exist_ok=True)
        print(f"resampling {len(jobs)} clip(s) to {fs} Hz into {wav_dir}")
        if nj > 1:
            with ProcessPoolExecutor(max_workers=nj) as pool:
                list(pool.map(_convert, jobs, chunksize=16))
        else:
            for job in jobs:
                _convert(job)
    return paths


def write_data_dir(
    out_dir: Path, utt_ids: Sequence[str], texts: Dict[str, str], wavs: Dict[str, Path]
) -> None:
    """Write ``wav.scp``, ``text``, ``utt2spk`` and ``spk2utt`` for one set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = sorted(utt_ids)
    for name, value in (("wav.scp", wavs), ("text", texts)):
        with (out_dir / name).open("w", encoding="utf-8") as f:
            f.writelines(f"{i} {value[i]}\n" for i in ids)
    with (out_dir / "utt2spk").open("w", encoding="utf-8") as f:
        f.writelines(f"{i} {SPEAKER}\n" for i in ids)
    with (out_dir / "spk2utt").open("w", encoding="utf-8") as f:
        f.write(" ".join([SPEAKER, *ids]) + "\n")


def prepare(
    corpus: Path,
    data_dir: Path,
    fs: int,
    n_dev: int,
    n_eval: int,
    wav_dir: Optional[Path] = None,
    nj: int = 1,
    set_names: Sequence[str] = ("tr_no_dev", "dev", "eval1"),
) -> Dict[str, List[str]]:
    """Prepare the Kaldi-style data directories of an LJSpeech-style corpus.

    Args:
        corpus (Path): Corpus directory (``metadata.csv`` and ``wavs/``).
        data_dir (Path): Parent of the set directories.
        fs (int): Target sampling rate in Hz.
        n_dev (int): Development set size.
        n_eval (int): Evaluation set size (0: no evaluation set is written).
        wav_dir (Optional[Path]): Resampled clips; ``<data_dir>/wavs_<fs>``
            by default.
        nj (int): Number of parallel resampling processes.
        set_names (Sequence[str]): Names of the train, dev and eval sets.

    Returns:
        Dict[str, List[str]]: Utterance IDs by set name (empty sets omitted).

    """
    if not corpus.is_dir():
        raise CorpusError(f"corpus directory {corpus} not found")
    texts = read_metadata(corpus)
    splits = split_ids(list(texts), n_dev, n_eval)
    wavs = locate_wavs(
        corpus, sorted(texts), fs, wav_dir or data_dir / f"wavs_{fs}", nj
    )
    written: Dict[str, List[str]] = {}
    for name, ids in zip(set_names, splits.values()):
        if ids:
            write_data_dir(data_dir / name, ids, texts, wavs)
            written[name] = ids
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--data_dir", type=Path, default=Path("data"))
    parser.add_argument("--fs", type=int, required=True, help="target rate, Hz")
    parser.add_argument("--n_dev", type=int, default=250)
    parser.add_argument("--n_eval", type=int, default=250)
    parser.add_argument("--wav_dir", type=Path, default=None)
    parser.add_argument("--nj", type=int, default=1)
    parser.add_argument("--set_names", nargs=3, default=["tr_no_dev", "dev", "eval1"])
    args = parser.parse_args(argv)
    try:
        written = prepare(
            args.corpus,
            args.data_dir,
            args.fs,
            args.n_dev,
            args.n_eval,
            args.wav_dir,
            args.nj,
            args.set_names,
        )
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, ids in written.items():
        print(f"{args.data_dir / name}: {len(ids)} utterance(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
