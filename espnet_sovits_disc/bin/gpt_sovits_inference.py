"""Synthesis with a ``tts: gpt_sovits`` model trained by ESPnet.

For every utterance of the data: its phonemes (``text``, GPT-SoVITS ids),
the semantic codes of its HuBERT features (``ssl_feats``), the timbre of a
reference waveform (``speech``; the same utterance's or another one's, keyed
by the utterance id) and, for v2Pro, the reference's speaker-verification
embedding (``spembs``); writes ``<output_dir>/wav/<utt_id>.wav``.

Example::

    python -m espnet_sovits_disc.bin.gpt_sovits_inference \
        --train_config exp/tts/config.yaml --model_file exp/tts/latest.pth \
        --data_path_and_name_and_type dump/eval/text_int,text,text_int \
        --data_path_and_name_and_type dump/eval/wav.scp,speech,sound \
        --data_path_and_name_and_type dump/eval/ssl_feats.scp,ssl_feats,npy \
        --output_dir exp/tts/decode/eval --noise_scale 0.5
"""

import argparse
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import soundfile as sf
import torch
from espnet2.utils.types import str2triple_str, str_or_none

from espnet_sovits_disc.gpt_sovits.gan_tts import GPTSoVITS
from espnet_sovits_disc.tasks.gan_tts import GANTTSTask


def get_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_config", type=Path, required=True)
    parser.add_argument("--model_file", type=Path, required=True)
    parser.add_argument(
        "--data_path_and_name_and_type",
        type=str2triple_str,
        action="append",
        required=True,
        help="text (text_int), speech (the reference, sound), ssl_feats (npy) "
        "and, for v2Pro, spembs (npy)",
    )
    parser.add_argument("--key_file", type=str_or_none, default=None)
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--noise_scale", type=float, default=0.5)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=str, default="cpu")
    return parser


def synthesize(
    train_config: Path,
    model_file: Path,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    output_dir: Path,
    noise_scale: float = 0.5,
    speed: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
    key_file: Optional[str] = None,
) -> List[Path]:
    """Write one waveform per utterance.

    Args:
        train_config (Path): The training's ``config.yaml``.
        model_file (Path): Its model file (e.g. ``latest.pth``).
        data_path_and_name_and_type (Sequence[Tuple[str, str, str]]): ESPnet
            data triples for ``text``, ``speech``, ``ssl_feats`` (``spembs``).
        output_dir (Path): ``wav/`` is written under it.
        noise_scale (float): Scale of the prior's noise.
        speed (float): Speaking rate.
        seed (int): Seed of the noise.
        device (str): Torch device.
        key_file (Optional[str]): Utterances to synthesize (default: all).

    Returns:
        List[Path]: The files written.

    Raises:
        ValueError: If the model is not ``tts: gpt_sovits``.

    """
    model, train_args = GANTTSTask.build_model_from_file(
        train_config, model_file, device
    )
    if not isinstance(model.tts, GPTSoVITS):
        raise ValueError(
            f"{train_config} trains tts {train_args.tts}, not gpt_sovits: use "
            "espnet2.bin.tts_inference for it"
        )
    model.eval()
    loader = GANTTSTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype="float32",
        batch_size=1,
        key_file=key_file,
        num_workers=0,
        preprocess_fn=GANTTSTask.build_preprocess_fn(train_args, False),
        collate_fn=GANTTSTask.build_collate_fn(train_args, False),
        allow_variable_data_keys=False,
        inference=True,
    )
    wav_dir = Path(output_dir) / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    written = []
    for keys, batch in loader:
        item = {
            name: batch[name][0].to(device)
            for name in ("text", "speech", "ssl_feats", "spembs")
            if name in batch
        }
        wav = model.tts.inference(**item, noise_scale=noise_scale, speed=speed)["wav"]
        path = wav_dir / f"{keys[0]}.wav"
        sf.write(path, wav.cpu().numpy(), model.tts.fs, "PCM_16")
        written.append(path)
    return written


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run synthesis from the command line."""
    args = get_parser().parse_args(cmd)
    synthesize(**vars(args))


if __name__ == "__main__":
    main()
