#!/usr/bin/env bash
# mini_ljspeech: the whole GAN-TTS pipeline (data, tokens, statistics,
# training with the GPT-SoVITS discriminator, synthesis) on a 12-clip corpus
# in minutes on a CPU. Run from anywhere; options are passed to tts.sh
# (e.g. --stage 4 --stop_stage 5, --python /path/to/python; see --help).
set -euo pipefail

"$(dirname "${BASH_SOURCE[0]}")/tts.sh" \
    --fs 16000 \
    --token_type char \
    --train_set tr_no_dev \
    --valid_set dev \
    --test_sets dev \
    --train_config conf/train.yaml \
    --inference_model latest.pth \
    "$@"
