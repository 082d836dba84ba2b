#!/usr/bin/env bash
# LJSpeech 1.1 data preparation: download (resumable, SHA-256 verified),
# extract, resample to --fs and split like ESPnet's egs2/ljspeech/tts1:
# the last 500 utterances (in ID order) give 250 dev and 250 eval1, the
# remaining 12600 are tr_no_dev.
set -euo pipefail

python=python        # python interpreter
fs=32000             # target sampling rate (GPT-SoVITS s2.json: 32 kHz)
nj=1                 # parallel resampling jobs
n_dev=250
n_eval=250
download_dir=downloads
url=https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2
# SHA-256 of LJSpeech-1.1.tar.bz2, as published with torchaudio.datasets.LJSPEECH
# (give --url and --sha256 together for a mirror or a local copy).
sha256=be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5

while [ $# -gt 0 ]; do
    case "$1" in
        --python|--fs|--nj|--n_dev|--n_eval|--download_dir|--url|--sha256)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
            printf -v "${1#--}" '%s' "$2"
            shift 2
            ;;
        *)
            echo "$0: unknown option $1" >&2
            echo "options: --python --fs --nj --n_dev --n_eval --download_dir --url --sha256" >&2
            exit 1
            ;;
    esac
done

corpus=${download_dir}/LJSpeech-1.1
archive=${download_dir}/LJSpeech-1.1.tar.bz2

if [ ! -f "${corpus}/.complete" ]; then
    mkdir -p "${download_dir}"
    if [ ! -f "${archive}.verified" ]; then
        echo "downloading ${url} to ${archive} (2.6 GB; an interrupted download resumes)"
        if command -v wget > /dev/null; then
            wget --continue --tries 5 --output-document "${archive}" "${url}"
        elif command -v curl > /dev/null; then
            curl --fail --location --retry 5 --continue-at - --output "${archive}" "${url}"
        elif [ ! -f "${archive}" ]; then
            echo "$0: neither wget nor curl is installed; download ${url} into ${download_dir}/ yourself" >&2
            exit 1
        fi
        echo "verifying the SHA-256 checksum"
        if command -v sha256sum > /dev/null; then
            actual=$(sha256sum "${archive}" | cut -d ' ' -f 1)
        elif command -v shasum > /dev/null; then
            actual=$(shasum -a 256 "${archive}" | cut -d ' ' -f 1)
        else
            echo "$0: neither sha256sum nor shasum is installed" >&2
            exit 1
        fi
        if [ "${actual}" != "${sha256}" ]; then
            echo "$0: checksum mismatch for ${archive}: delete it and run again" >&2
            exit 1
        fi
        touch "${archive}.verified"
    fi
    command -v bzip2 > /dev/null || { echo "$0: bzip2 is needed to extract ${archive}" >&2; exit 1; }
    echo "extracting ${archive}"
    tar -xjf "${archive}" -C "${download_dir}"
    touch "${corpus}/.complete"
fi

${python} pyscripts/prepare_ljspeech.py \
    --corpus "${corpus}" --data_dir data --fs "${fs}" \
    --n_dev "${n_dev}" --n_eval "${n_eval}" --nj "${nj}" \
    --wav_dir "${download_dir}/LJSpeech-1.1/wavs_${fs}"
