#!/usr/bin/env bash
# GPT-SoVITS stage 2 itself (tts: gpt_sovits) on LJSpeech with ESPnet's
# GAN-TTS trainer: train from scratch, or fine-tune the published s2G/s2D,
# and export the result for GPT-SoVITS's own inference. See README.md.
#
#   1. data preparation   local/data.sh at 32 kHz -> data/<set>/
#   2. phonemes           GPT-SoVITS phoneme ids -> dump/gpt_sovits/<set>/text_int
#                         (g2p_en: needs NLTK's averaged_perceptron_tagger_eng, cmudict)
#   3. features           chinese-hubert-base features and the rescaled training
#                         audio -> dump/gpt_sovits/<set>/{ssl_feats,wav}.scp
#                         (--sv_emb_dir: v2Pro embeddings -> spembs.scp)
#   4. pretrained import  --pretrained_s2G (+ --pretrained_s2D) -> exp/pretrained/<tag>.pth,
#                         the file the fine-tuning config's init_param names
#   5. statistics         exp/gpt_sovits_stats/
#   6. training           exp/tts_<tag>/ (checkpoints, images/*.png)
#   7. synthesis          exp/tts_<tag>/decode_<model>/<set>/wav/*.wav (each
#                         utterance's own audio as the timbre reference)
#   8. export             exp/tts_<tag>/sovits_weights/<tag>.pth (GPT-SoVITS's SoVITS_weights layout)
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0")) $*"; }
die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }

caller_dir=${PWD}
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

stage=1
stop_stage=8
python=python          # interpreter with espnet and espnet_sovits_disc[recipes]
nj=1                   # parallel jobs for data preparation
ngpu=1                 # GPUs for training (>1: one process per GPU on this node)
local_data_opts=""     # extra options for local/data.sh
train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"
hubert_dir=""          # downloaded chinese-hubert-base (stage 3)
sv_emb_dir=""          # <utt>.npy speaker-verification embeddings (v2Pro, stage 3)
device=cpu             # torch device of the feature extraction
train_config=conf/tuning/train_gpt_sovits_s2_v2.yaml
pretrained_s2G=""      # s2G2333k.pth / s2Gv2Pro.pth ... (stage 4)
pretrained_s2D=""      # the matching s2D*.pth (stage 4)
train_args=""          # extra trainer options, e.g. "--max_epoch 1"
tag=""                 # experiment name; default: the config's basename
inference_model=latest.pth
noise_scale=0.5

options="stage stop_stage python nj ngpu local_data_opts train_set valid_set test_sets
hubert_dir sv_emb_dir device train_config pretrained_s2G pretrained_s2D train_args tag
inference_model noise_scale"

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
            for name in ${options}; do printf '  --%-18s %s\n' "${name}" "${!name}"; done
            exit 0 ;;
        --*)
            name=${1#--}
            case " ${options//$'\n'/ } " in *" ${name} "*) ;; *) die "unknown option $1 (see --help)" ;; esac
            [ $# -ge 2 ] || die "option $1 needs a value"
            printf -v "${name}" '%s' "$2"
            shift 2 ;;
        *) die "unexpected argument $1 (see --help)" ;;
    esac
done

read -r -a python_words <<< "${python}"
if [[ "${python_words[0]}" == */* && "${python_words[0]}" != /* ]]; then
    python_words[0]="${caller_dir}/${python_words[0]}"
fi
python="${python_words[*]}"
cd "${recipe_dir}"
${python} -c "import espnet2, espnet_sovits_disc" 2>/dev/null || \
    die "'${python}' cannot import espnet2 and espnet_sovits_disc: pip install -e '.[recipes]'"

tag=${tag:-$(basename "${train_config}" .yaml)}
tts_exp=exp/tts_${tag}
stats_dir=exp/gpt_sovits_stats
dump=dump/gpt_sovits
version=$(${python} -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['tts_conf'].get('version', 'v2'))" "${train_config}")

data_opts() {  # the ESPnet data triples of the sets $1 (train) and $2 (valid)
    local split dset
    for split in train valid; do
        dset=$1; [ "${split}" = valid ] && dset=$2
        echo "--${split}_data_path_and_name_and_type ${dump}/${dset}/text_int,text,text_int"
        echo "--${split}_data_path_and_name_and_type ${dump}/${dset}/wav.scp,speech,sound"
        echo "--${split}_data_path_and_name_and_type ${dump}/${dset}/ssl_feats.scp,ssl_feats,npy"
        if [ -s "${dump}/${dset}/spembs.scp" ]; then
            echo "--${split}_data_path_and_name_and_type ${dump}/${dset}/spembs.scp,spembs,npy"
        fi
    done
}
token_opts=(--use_preprocessor false --token_type phn
    --token_list "$(${python} -c 'import sys; from espnet_sovits_disc.gpt_sovits.symbols import inventory_file; print(inventory_file(sys.argv[1]))' "${version}")")
sets="${train_set} ${valid_set} ${test_sets}"
sets=$(echo "${sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++')

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "stage 1: data preparation (32 kHz)"
    # shellcheck disable=SC2086
    local/data.sh --python "${python}" --fs 32000 --nj "${nj}" ${local_data_opts}
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    for dset in ${sets}; do
        log "stage 2: phonemes of ${dset} -> ${dump}/${dset}/text_int"
        ${python} -m espnet_sovits_disc.bin.gpt_sovits_prepare phonemes \
            --text "data/${dset}/text" --dump_dir "${dump}/${dset}" --version "${version}"
    done
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    [ -n "${hubert_dir}" ] || die "stage 3 needs --hubert_dir (the downloaded chinese-hubert-base)"
    for dset in ${sets}; do
        log "stage 3: HuBERT features of ${dset} -> ${dump}/${dset}"
        ${python} -m espnet_sovits_disc.bin.gpt_sovits_prepare features \
            --wav_scp "data/${dset}/wav.scp" --dump_dir "${dump}/${dset}" \
            --hubert_dir "${hubert_dir}" --device "${device}"
        if [ -n "${sv_emb_dir}" ]; then
            ${python} -m espnet_sovits_disc.bin.gpt_sovits_prepare sv_embeddings \
                --dump_dir "${dump}/${dset}" --sv_emb_dir "${sv_emb_dir}"
        fi
    done
    if [[ "${version}" = v2Pro* ]] && [ ! -s "${dump}/${train_set}/spembs.scp" ]; then
        die "${train_config} trains ${version}, which needs --sv_emb_dir (see README.md)"
    fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && [ -n "${pretrained_s2G}" ]; then
    log "stage 4: import ${pretrained_s2G} ${pretrained_s2D} -> exp/pretrained/${tag}.pth"
    ${python} -m espnet_sovits_disc.bin.gpt_sovits_weights import \
        --src "${pretrained_s2G}" ${pretrained_s2D:+--discriminator_src "${pretrained_s2D}"} \
        --dst "exp/pretrained/${tag}.pth" --config "${train_config}"
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    log "stage 5: statistics -> ${stats_dir}"
    # shellcheck disable=SC2046
    ${python} -m espnet_sovits_disc.bin.gan_tts_train --collect_stats true \
        --config "${train_config}" --ngpu 0 --num_workers 0 --output_dir "${stats_dir}" \
        --train_shape_file "${dump}/${train_set}/wav.scp" \
        --valid_shape_file "${dump}/${valid_set}/wav.scp" \
        "${token_opts[@]}" $(data_opts "${train_set}" "${valid_set}")
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    log "stage 6: training -> ${tts_exp}"
    dist_opts=()
    [ "${ngpu}" -gt 1 ] && dist_opts=(--multiprocessing_distributed true)
    # shellcheck disable=SC2046,SC2086
    ${python} -m espnet_sovits_disc.bin.gan_tts_train \
        --config "${train_config}" --ngpu "${ngpu}" --output_dir "${tts_exp}" \
        --train_shape_file "${stats_dir}/train/text_shape" \
        --train_shape_file "${stats_dir}/train/speech_shape" \
        --valid_shape_file "${stats_dir}/valid/text_shape" \
        --valid_shape_file "${stats_dir}/valid/speech_shape" \
        --fold_length 150 --fold_length 204800 \
        "${token_opts[@]}" $(data_opts "${train_set}" "${valid_set}") \
        ${dist_opts[@]+"${dist_opts[@]}"} ${train_args}
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    for dset in ${test_sets}; do
        out_dir=${tts_exp}/decode_${inference_model%.pth}/${dset}
        log "stage 7: synthesis of ${dset} -> ${out_dir}/wav"
        triples=(--data_path_and_name_and_type "${dump}/${dset}/text_int,text,text_int"
            --data_path_and_name_and_type "${dump}/${dset}/wav.scp,speech,sound"
            --data_path_and_name_and_type "${dump}/${dset}/ssl_feats.scp,ssl_feats,npy")
        if [ -s "${dump}/${dset}/spembs.scp" ]; then
            triples+=(--data_path_and_name_and_type "${dump}/${dset}/spembs.scp,spembs,npy")
        fi
        ${python} -m espnet_sovits_disc.bin.gpt_sovits_inference \
            --train_config "${tts_exp}/config.yaml" --model_file "${tts_exp}/${inference_model}" \
            "${triples[@]}" --output_dir "${out_dir}" --noise_scale "${noise_scale}" \
            --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)"
        n_wavs=$(find "${out_dir}/wav" -name '*.wav' | wc -l)
        n_utts=$(wc -l < "${dump}/${dset}/text_int")
        [ "${n_wavs}" -eq "${n_utts}" ] || die "${out_dir}/wav holds ${n_wavs} wav file(s) for ${n_utts} utterance(s)"
        log "${n_wavs} wav file(s) in ${out_dir}/wav"
    done
fi

if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    log "stage 8: export -> ${tts_exp}/sovits_weights/${tag}.pth"
    ${python} -m espnet_sovits_disc.bin.gpt_sovits_weights export \
        --src "${tts_exp}/${inference_model}" --config "${tts_exp}/config.yaml" \
        --dst "${tts_exp}/sovits_weights/${tag}.pth"
fi

log "done (stages ${stage} to ${stop_stage})"
