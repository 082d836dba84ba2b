#!/usr/bin/env bash
# Data preparation for mini_ljspeech: Kaldi-style data directories from the
# committed corpus (corpus/LJSpeech-mini, LJSpeech layout, 12 clips at 16 kHz).
# The last utterances become the dev set (no eval set: the corpus is tiny).
set -euo pipefail

python=python  # python interpreter
fs=16000       # sampling rate of the prepared data (other rates are resampled)
nj=1           # parallel resampling jobs
n_dev=2        # utterances held out for validation and synthesis
corpus=corpus/LJSpeech-mini

while [ $# -gt 0 ]; do
    case "$1" in
        --python|--fs|--nj|--n_dev|--corpus)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
            printf -v "${1#--}" '%s' "$2"
            shift 2
            ;;
        *) echo "$0: unknown option $1 (options: --python --fs --nj --n_dev --corpus)" >&2; exit 1 ;;
    esac
done

[ -f "${corpus}/metadata.csv" ] || {
    echo "$0: ${corpus}/metadata.csv not found; the mini corpus is part of the repository" >&2
    exit 1
}
${python} pyscripts/prepare_ljspeech.py \
    --corpus "${corpus}" --data_dir data --fs "${fs}" \
    --n_dev "${n_dev}" --n_eval 0 --nj "${nj}"
