"""Recipes, offline: LJSpeech data preparation (split, resampling, download
verification and extraction), the wiring of the LJSpeech run.sh (multi-GPU
training and synthesis commands), the mini recipe's first stages, and
tts.sh's option errors.

The full mini recipe (training and synthesis) runs in ``.ci/run``, not here.
Recipes are copied into a temporary directory so that nothing is written
into the source tree.
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# The recipes run end to end.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EGS = ROOT / "egs"
HELPER = EGS / "TEMPLATE" / "tts1" / "pyscripts" / "prepare_ljspeech.py"
RECIPE_OUTPUTS = ("data", "dump", "exp", "downloads")


def load_helper():
    spec = importlib.util.spec_from_file_location("prepare_ljspeech", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prep = load_helper()


def write_fake_ljspeech(root: Path, ids, fs: int = 22050, seconds: float = 0.5):
    """An LJSpeech-1.1-like corpus: metadata.csv and wavs/ of sine tones."""
    (root / "wavs").mkdir(parents=True)
    lines = []
    for k, utt_id in enumerate(ids):
        t = np.arange(int(fs * seconds)) / fs
        sf.write(
            root / "wavs" / f"{utt_id}.wav",
            0.3 * np.sin(2 * np.pi * (200 + 50 * k) * t),
            fs,
            subtype="PCM_16",
        )
        lines.append(f"{utt_id}|Raw text {k}, Mr. X.|Normalized  text {k}, mister x.\n")
    (root / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    return root


def read_kaldi(path: Path):
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def copy_recipes(dest: Path) -> Path:
    """Copy egs/ (without outputs, symlinks kept) and return the copy."""
    ignore = shutil.ignore_patterns(*RECIPE_OUTPUTS)
    return Path(shutil.copytree(EGS, dest / "egs", symlinks=True, ignore=ignore))


def run(command, cwd, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_split_is_espnet_ljspeech_split():
    """13100 IDs: last 500 in ID order held out, first 250 of them dev."""
    ids = [f"LJ{i // 1000:03d}-{i % 1000:04d}" for i in range(13100)]
    shuffled = list(reversed(ids))
    splits = prep.split_ids(shuffled, 250, 250)
    assert splits["train"] == ids[:12600]
    assert splits["dev"] == ids[12600:12850]
    assert splits["eval"] == ids[12850:]


def test_prepare_resamples_and_writes_kaldi_dirs(tmp_path):
    ids = ["LJ001-0002", "LJ001-0001", "LJ002-0001"]
    corpus = write_fake_ljspeech(tmp_path / "LJSpeech-1.1", ids, fs=22050)
    data = tmp_path / "data"
    written = prep.prepare(corpus, data, fs=32000, n_dev=1, n_eval=1)
    assert written == {
        "tr_no_dev": ["LJ001-0001"],
        "dev": ["LJ001-0002"],
        "eval1": ["LJ002-0001"],
    }
    for name, (utt_id,) in written.items():
        wav_scp = read_kaldi(data / name / "wav.scp")
        assert list(wav_scp) == [utt_id]
        audio, fs = sf.read(wav_scp[utt_id])
        assert fs == 32000
        assert abs(len(audio) - 0.5 * 32000) <= 2
        assert Path(wav_scp[utt_id]).is_absolute()
        assert read_kaldi(data / name / "utt2spk") == {utt_id: "LJ"}
        assert (data / name / "spk2utt").read_text() == f"LJ {utt_id}\n"
    # The normalized (third) column, whitespace collapsed.
    assert read_kaldi(data / "dev" / "text") == {
        "LJ001-0002": "Normalized text 0, mister x."
    }
    # Resuming keeps the resampled files.
    resampled = data / "wavs_32000" / "LJ001-0001.wav"
    mtime = resampled.stat().st_mtime_ns
    prep.prepare(corpus, data, fs=32000, n_dev=1, n_eval=1)
    assert resampled.stat().st_mtime_ns == mtime


def test_prepare_references_clips_already_at_the_rate(tmp_path):
    corpus = write_fake_ljspeech(tmp_path / "c", ["A-1", "A-2"], fs=16000)
    prep.prepare(corpus, tmp_path / "data", fs=16000, n_dev=1, n_eval=0)
    wav_scp = read_kaldi(tmp_path / "data" / "tr_no_dev" / "wav.scp")
    assert wav_scp == {"A-1": str((corpus / "wavs" / "A-1.wav").resolve())}
    assert not (tmp_path / "data" / "eval1").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no_metadata", "metadata.csv not found"),
        ("missing_wav", "listed in metadata.csv but missing"),
        ("bad_line", "expected 'ID|raw text|normalized text'"),
        ("duplicate", "duplicate ID"),
        ("too_small", "cannot be split"),
    ],
)
def test_prepare_reports_bad_corpora(tmp_path, damage, message):
    corpus = write_fake_ljspeech(tmp_path / "c", ["A-1", "A-2", "A-3"])
    metadata = corpus / "metadata.csv"
    n_dev = 1
    if damage == "no_metadata":
        metadata.unlink()
    elif damage == "missing_wav":
        (corpus / "wavs" / "A-2.wav").unlink()
    elif damage == "bad_line":
        metadata.write_text(metadata.read_text() + "A-4|only two fields\n")
    elif damage == "duplicate":
        metadata.write_text(metadata.read_text() + "A-1|x|y\n")
    else:
        n_dev = 3
    with pytest.raises(prep.CorpusError, match=message):
        prep.prepare(corpus, tmp_path / "data", fs=16000, n_dev=n_dev, n_eval=0)
    assert (
        prep.main(
            [
                "--corpus",
                str(corpus),
                "--fs",
                "16000",
                "--n_dev",
                str(n_dev),
                "--data_dir",
                str(tmp_path / "data"),
            ]
        )
        == 1
    )


def test_ljspeech_data_sh_on_an_extracted_corpus(tmp_path):
    """local/data.sh skips the download when the corpus is complete."""
    egs = copy_recipes(tmp_path)
    downloads = tmp_path / "dl"
    ids = [f"LJ001-{i:04d}" for i in range(1, 6)]
    write_fake_ljspeech(downloads / "LJSpeech-1.1", ids)
    (downloads / "LJSpeech-1.1" / ".complete").touch()
    recipe = egs / "ljspeech" / "tts1"
    proc = run(
        [
            "bash",
            "local/data.sh",
            "--python",
            sys.executable,
            "--download_dir",
            str(downloads),
            "--n_dev",
            "1",
            "--n_eval",
            "2",
            "--nj",
            "2",
        ],
        cwd=recipe,
    )
    assert proc.returncode == 0, proc.stderr
    assert "downloading" not in proc.stdout
    assert list(read_kaldi(recipe / "data" / "tr_no_dev" / "text")) == ids[:2]
    assert list(read_kaldi(recipe / "data" / "dev" / "text")) == ids[2:3]
    assert list(read_kaldi(recipe / "data" / "eval1" / "text")) == ids[3:]
    wav = read_kaldi(recipe / "data" / "eval1" / "wav.scp")[ids[-1]]
    assert sf.info(wav).samplerate == 32000
    assert Path(wav).parent == (downloads / "LJSpeech-1.1" / "wavs_32000").resolve()


def test_ljspeech_data_sh_rejects_unknown_options(tmp_path):
    egs = copy_recipes(tmp_path)
    proc = run(["bash", "local/data.sh", "--bogus", "1"], cwd=egs / "ljspeech" / "tts1")
    assert proc.returncode != 0
    assert "unknown option --bogus" in proc.stderr


def test_mini_recipe_data_and_token_stages_from_another_cwd(tmp_path):
    """Stages 1-2 on the committed corpus, invoked as bash egs/.../run.sh."""
    egs = copy_recipes(tmp_path)
    recipe = egs / "mini_ljspeech" / "tts1"
    proc = run(
        [
            "bash",
            "egs/mini_ljspeech/tts1/run.sh",
            "--stop_stage",
            "2",
            "--python",
            sys.executable,
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    train = read_kaldi(recipe / "data" / "tr_no_dev" / "wav.scp")
    dev = read_kaldi(recipe / "data" / "dev" / "wav.scp")
    assert len(train) == 10 and list(dev) == ["MINI-0011", "MINI-0012"]
    for path in [*train.values(), *dev.values()]:
        assert sf.info(path).samplerate == 16000
    for name in ("text", "utt2spk", "spk2utt"):
        assert (recipe / "data" / "dev" / name).is_file()
    tokens = (
        (recipe / "data" / "token_list" / "char" / "tokens.txt").read_text().split()
    )
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert "<space>" in tokens and "T" in tokens  # tacotron cleaner keeps case
    assert not (recipe / "exp").exists()


def test_tts_sh_options_and_errors(tmp_path):
    egs = copy_recipes(tmp_path)
    recipe = egs / "mini_ljspeech" / "tts1"
    helped = run(["bash", "tts.sh", "--help"], cwd=recipe)
    assert helped.returncode == 0 and "--stop_stage" in helped.stdout
    unknown = run(["bash", "run.sh", "--no_such_option", "1"], cwd=recipe)
    assert (
        unknown.returncode != 0 and "unknown option --no_such_option" in unknown.stderr
    )
    # A relative --python is taken from the caller's directory.
    no_python = run(
        ["bash", "egs/mini_ljspeech/tts1/run.sh", "--python", "venv/bin/python"],
        cwd=tmp_path,
    )
    assert no_python.returncode != 0 and "cannot import espnet2" in no_python.stderr
    assert f"'{tmp_path}/venv/bin/python'" in no_python.stderr
    no_stats = run(
        ["bash", "run.sh", "--stage", "4", "--python", sys.executable], cwd=recipe
    )
    assert no_stats.returncode != 0 and "run stage 3 first" in no_stats.stderr


FAKE_PYTHON = r"""#!/usr/bin/env bash
# Records its arguments; for the inference module, writes one wav per key.
printf '%s\n' "$*" >> "${FAKE_PYTHON_LOG}"
if [ "${2:-}" = espnet_sovits_disc.run ]; then
    while [ $# -gt 0 ]; do
        case "$1" in
            --output_dir) out=$2 ;;
            --key_file) keys=$2 ;;
        esac
        shift
    done
    mkdir -p "${out}/wav"
    cut -d ' ' -f 1 "${keys}" | while read -r key; do touch "${out}/wav/${key}.wav"; done
fi
"""


def test_ljspeech_run_sh_multi_gpu_training_and_synthesis_commands(tmp_path):
    """--ngpu 2 reaches the plugin's trainer with ESPnet's multi-GPU spawning,
    and synthesis runs the checkpoint through the plugin's wrapper."""
    egs = copy_recipes(tmp_path)
    recipe = egs / "ljspeech" / "tts1"
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    for dset in ("dev", "eval1"):
        (recipe / "data" / dset).mkdir(parents=True)
        (recipe / "data" / dset / "text").write_text(f"{dset}-1 a\n{dset}-2 b\n")
    stats = recipe / "exp" / "tts_stats_char" / "train"
    stats.mkdir(parents=True)
    (stats / "speech_shape").write_text("x 1\n")
    exp = recipe / "exp" / "tts_train_gpt_sovits_v2"
    exp.mkdir()
    (exp / "train.total_count.ave_10best.pth").touch()
    env_log = dict(os.environ, FAKE_PYTHON_LOG=str(log))
    proc = subprocess.run(
        [
            "bash",
            "egs/ljspeech/tts1/run.sh",
            "--stage",
            "4",
            "--ngpu",
            "2",
            "--python",
            "bin/python",
            "--train_args",
            "--max_epoch 3",
        ],
        cwd=tmp_path,
        env=env_log,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    train = [c for c in calls if "espnet_sovits_disc.bin.gan_tts_train" in c]
    assert len(train) == 1
    for expected in (
        "--config conf/train.yaml",
        "--ngpu 2",
        "--multiprocessing_distributed true",
        "--output_dir exp/tts_train_gpt_sovits_v2",
        "--train_shape_file exp/tts_stats_char/train/speech_shape",
        "--token_list data/token_list/char/tokens.txt",
        "--max_epoch 3",
    ):
        assert expected in train[0], expected
    synth = [c for c in calls if "espnet2.bin.tts_inference" in c]
    assert len(synth) == 2
    assert all(
        c.startswith("-m espnet_sovits_disc.run -m espnet2.bin.tts_inference")
        for c in synth
    )
    assert all("--ngpu 1" in c for c in synth)
    assert all(
        "--model_file exp/tts_train_gpt_sovits_v2/train.total_count.ave_10best.pth" in c
        for c in synth
    )
    out = exp / "decode_train.total_count.ave_10best" / "eval1" / "wav"
    assert sorted(p.name for p in out.iterdir()) == ["eval1-1.wav", "eval1-2.wav"]


@pytest.mark.parametrize("intact", [True, False], ids=["verified", "corrupt"])
def test_ljspeech_data_sh_download_verify_extract(tmp_path, intact):
    """Download step with a stand-in wget (the archive is already there):
    the checksum is verified, then the archive is extracted and prepared."""
    egs = copy_recipes(tmp_path)
    source = tmp_path / "src"
    write_fake_ljspeech(
        source / "LJSpeech-1.1", ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    )
    downloads = tmp_path / "dl"
    downloads.mkdir()
    archive = downloads / "LJSpeech-1.1.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(source / "LJSpeech-1.1", arcname="LJSpeech-1.1")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if not intact:
        digest = "0" * 64
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "wget").write_text('#!/usr/bin/env bash\necho "wget $*" >&2\n')
    (bin_dir / "wget").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", OMP_NUM_THREADS="1")
    recipe = egs / "ljspeech" / "tts1"
    proc = subprocess.run(
        [
            "bash",
            "local/data.sh",
            "--python",
            sys.executable,
            "--download_dir",
            str(downloads),
            "--n_dev",
            "1",
            "--n_eval",
            "1",
            "--sha256",
            digest,
        ],
        cwd=recipe,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "wget --continue" in proc.stderr
    if intact:
        assert proc.returncode == 0, proc.stderr
        assert (downloads / "LJSpeech-1.1" / ".complete").is_file()
        assert list(read_kaldi(recipe / "data" / "eval1" / "text")) == ["LJ001-0003"]
    else:
        assert proc.returncode != 0
        assert "checksum mismatch" in proc.stderr
        assert not (downloads / "LJSpeech-1.1").exists()
