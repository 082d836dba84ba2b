#!/usr/bin/env bash
# GAN-TTS recipe pipeline for espnet_sovits_disc, with ESPnet's stage layout.
#
# A self-contained counterpart of ESPnet's egs2/TEMPLATE/tts1/tts.sh for the
# pip-installed espnet (whose wheel ships neither tts.sh nor Kaldi's utils/):
# pure bash and python. Each recipe links this file as its tts.sh and calls
# it from run.sh; it runs in the recipe directory whatever the caller's cwd.
#
#   1. data preparation   local/data.sh -> data/<set>/{wav.scp,text,utt2spk,spk2utt}
#   2. token list         data/token_list/<token_type>/tokens.txt
#   3. statistics         exp/tts_stats_<token_type>/ (shape files, via collect_stats)
#   4. training           exp/tts_<tag>/ (checkpoints, images/*.png training curves)
#   5. synthesis          exp/tts_<tag>/decode_<model>/<set>/wav/*.wav
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0")) $*"
}
die() {
    echo "$(basename "$0"): error: $*" >&2
    exit 1
}

caller_dir=${PWD}
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Options (--name value). Paths are relative to the recipe directory, except
# a relative --python, which is taken relative to the caller's directory.
stage=1               # first stage to run
stop_stage=5          # last stage to run
python=python         # python interpreter (with espnet and espnet_sovits_disc)
nj=1                  # parallel jobs for data preparation
ngpu=0                # GPUs for training and synthesis; >1: multi-GPU on this node
fs=16000              # sampling rate of the prepared data, Hz
local_data_opts=""    # extra options for local/data.sh
token_type=char       # char or phn
cleaner=tacotron      # text cleaner (none, tacotron, ...)
g2p=g2p_en_no_space   # grapheme-to-phoneme converter, for token_type=phn
train_set=tr_no_dev   # training set (under data/)
valid_set=dev         # validation set
test_sets="dev eval1" # sets to synthesize
train_config=""       # training configuration (required from stage 3 on)
train_args=""         # extra training options, e.g. "--max_epoch 1"
tag=""                # experiment name; default: the config's basename
inference_model=latest.pth # checkpoint in the experiment directory to synthesize with
inference_args=""     # extra options for espnet2.bin.tts_inference
text_fold_length=150  # fold lengths (batch_type folded only)
speech_fold_length=204800

options="stage stop_stage python nj ngpu fs local_data_opts token_type cleaner
g2p train_set valid_set test_sets train_config train_args tag inference_model
inference_args text_fold_length speech_fold_length"

usage() {
    # The header comment of this file, then the options.
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    echo
    echo "Options (current values):"
    for name in ${options}; do
        printf '  --%-20s %s\n' "${name}" "${!name}"
    done
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --*)
            name=${1#--}
            name=${name//-/_}
            case " ${options//$'\n'/ } " in
                *" ${name} "*) ;;
                *) die "unknown option $1 (see --help)" ;;
            esac
            [ $# -ge 2 ] || die "option $1 needs a value"
            printf -v "${name}" '%s' "$2"
            shift 2
            ;;
        *) die "unexpected argument $1 (see --help)" ;;
    esac
done

for name in stage stop_stage nj ngpu; do
    [[ "${!name}" =~ ^[0-9]+$ ]] || die "--${name} must be a non-negative integer, not '${!name}'"
done

# A relative interpreter path such as .venv/bin/python means the caller's one.
read -r -a python_words <<< "${python}"
if [[ "${python_words[0]}" == */* && "${python_words[0]}" != /* ]]; then
    python_words[0]="${caller_dir}/${python_words[0]}"
fi
python="${python_words[*]}"

cd "${recipe_dir}"

case "${token_type}" in
    char) g2p=none; token_dir=data/token_list/char ;;
    phn) token_dir=data/token_list/phn_${g2p} ;;
    *) die "--token_type must be char or phn, not ${token_type}" ;;
esac
token_list=${token_dir}/tokens.txt
stats_dir=exp/tts_stats_${token_type}

if [ "${stop_stage}" -ge 3 ] && [ "${stage}" -le 5 ]; then
    [ -n "${train_config}" ] || die "--train_config is required for stages 3 to 5"
    [ -f "${train_config}" ] || die "training configuration ${train_config} not found"
fi
# conf/train.yaml -> tuning/train_x.yaml gives exp/tts_train_x
tag=${tag:-$(basename "$(readlink -f "${train_config:-none}")" .yaml)}
tts_exp=exp/tts_${tag}

${python} -c "import espnet2, espnet_sovits_disc" 2>/dev/null || die \
    "'${python}' cannot import espnet2 and espnet_sovits_disc: install the" \
    "project (pip install -e '.[test]') or pass --python /path/to/venv/bin/python"

# Options shared by statistics collection and training.
common_opts=(
    --use_preprocessor true
    --token_type "${token_type}"
    --token_list "${token_list}"
    --cleaner "${cleaner}"
    --g2p "${g2p}"
    --train_data_path_and_name_and_type "data/${train_set}/text,text,text"
    --train_data_path_and_name_and_type "data/${train_set}/wav.scp,speech,sound"
    --valid_data_path_and_name_and_type "data/${valid_set}/text,text,text"
    --valid_data_path_and_name_and_type "data/${valid_set}/wav.scp,speech,sound"
)

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "stage 1: data preparation"
    [ -x local/data.sh ] || die "local/data.sh not found or not executable"
    # shellcheck disable=SC2086
    local/data.sh --python "${python}" --fs "${fs}" --nj "${nj}" ${local_data_opts}
    for dset in "${train_set}" "${valid_set}" ${test_sets}; do
        for f in wav.scp text utt2spk spk2utt; do
            [ -s "data/${dset}/${f}" ] || die "stage 1 did not produce data/${dset}/${f}"
        done
    done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "stage 2: token list (${token_type}) -> ${token_list}"
    if [ "${token_type}" = phn ]; then
        ${python} -c "
import sys
from espnet2.text.phoneme_tokenizer import PhonemeTokenizer
try:
    PhonemeTokenizer(sys.argv[1]).text2tokens('test')
except Exception as e:
    sys.exit(f'g2p {sys.argv[1]!r} is unusable here ({type(e).__name__}: {e}); '
             'install its data (e.g. NLTK cmudict for g2p_en) or use --token_type char')
" "${g2p}"
    fi
    mkdir -p "${token_dir}"
    ${python} -m espnet2.bin.tokenize_text \
        --token_type "${token_type}" --cleaner "${cleaner}" --g2p "${g2p}" \
        --field 2- --input "data/${train_set}/text" --output "${token_list}" \
        --write_vocabulary true \
        --add_symbol "<blank>:0" --add_symbol "<unk>:1" --add_symbol "<sos/eos>:-1"
    log "$(wc -l < "${token_list}") tokens"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "stage 3: statistics -> ${stats_dir}"
    [ -s "${token_list}" ] || die "${token_list} missing: run stage 2 first"
    ${python} -m espnet_sovits_disc.bin.gan_tts_train \
        --collect_stats true \
        --config "${train_config}" \
        --ngpu 0 \
        --num_workers 0 \
        --output_dir "${stats_dir}" \
        --train_shape_file "data/${train_set}/wav.scp" \
        --valid_shape_file "data/${valid_set}/wav.scp" \
        "${common_opts[@]}"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "stage 4: training -> ${tts_exp}"
    [ -s "${stats_dir}/train/speech_shape" ] || die "statistics missing: run stage 3 first"
    dist_opts=()
    if [ "${ngpu}" -gt 1 ]; then
        # One process per GPU on this node, spawned by ESPnet's trainer.
        dist_opts=(--multiprocessing_distributed true)
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet_sovits_disc.bin.gan_tts_train \
        --config "${train_config}" \
        --ngpu "${ngpu}" \
        --output_dir "${tts_exp}" \
        --train_shape_file "${stats_dir}/train/text_shape" \
        --train_shape_file "${stats_dir}/train/speech_shape" \
        --valid_shape_file "${stats_dir}/valid/text_shape" \
        --valid_shape_file "${stats_dir}/valid/speech_shape" \
        --fold_length "${text_fold_length}" \
        --fold_length "${speech_fold_length}" \
        "${common_opts[@]}" \
        ${dist_opts[@]+"${dist_opts[@]}"} \
        ${train_args}
    if compgen -G "${tts_exp}/images/*.png" > /dev/null; then
        log "training curves: ${tts_exp}/images/*.png"
    else
        log "warning: no training curves in ${tts_exp}/images (is matplotlib installed?)"
    fi
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    [ -e "${tts_exp}/${inference_model}" ] || \
        die "${tts_exp}/${inference_model} not found: run stage 4 first"
    for dset in ${test_sets}; do
        out_dir=${tts_exp}/decode_${inference_model%.pth}/${dset}
        log "stage 5: synthesis of ${dset} -> ${out_dir}/wav"
        # shellcheck disable=SC2086
        ${python} -m espnet_sovits_disc.run -m espnet2.bin.tts_inference \
            --ngpu "$(( ngpu > 0 ? 1 : 0 ))" \
            --train_config "${tts_exp}/config.yaml" \
            --model_file "${tts_exp}/${inference_model}" \
            --data_path_and_name_and_type "data/${dset}/text,text,text" \
            --key_file "data/${dset}/text" \
            --output_dir "${out_dir}" \
            --vocoder_file none \
            ${inference_args}
        n_wavs=$(find "${out_dir}/wav" -name '*.wav' | wc -l)
        n_utts=$(wc -l < "data/${dset}/text")
        [ "${n_wavs}" -eq "${n_utts}" ] || \
            die "${out_dir}/wav holds ${n_wavs} wav file(s) for ${n_utts} utterance(s)"
        log "${n_wavs} wav file(s) in ${out_dir}/wav"
    done
fi

log "done (stages ${stage} to ${stop_stage})"
