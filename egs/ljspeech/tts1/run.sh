#!/usr/bin/env bash
# GPT-SoVITS stage-2 training setup on LJSpeech 1.1 (32 kHz) with ESPnet's
# GAN-TTS trainer; see README.md. Run from anywhere; options go to tts.sh
# (see --help), e.g.
#   ./run.sh --ngpu 4 --train_config conf/tuning/train_gpt_sovits_v2pro.yaml
#   ./run.sh --stage 5 --inference_model latest.pth --python ../../../.venv/bin/python
set -euo pipefail

"$(dirname "${BASH_SOURCE[0]}")/tts.sh" \
    --fs 32000 \
    --ngpu 1 \
    --nj 8 \
    --token_type char \
    --cleaner tacotron \
    --g2p g2p_en_no_space \
    --train_set tr_no_dev \
    --valid_set dev \
    --test_sets "dev eval1" \
    --train_config conf/train.yaml \
    --inference_model train.total_count.ave_10best.pth \
    "$@"
