#!/usr/bin/env bash
# Trains (or resumes) the shipped models on GMD in the background, one thread each, with jemalloc.
# Re-running this script resumes every run from its newest checkpoint.
#   scripts/train_models.sh            # both shipped models
#   RUNS="cat" scripts/train_models.sh # only the flat baseline
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/musicvae
DATA=${DATA:-data/gmd}
GMD=${GMD:-$(.venv/bin/python -c "from musicvae.data import default_gmd_dir; print(default_gmd_dir())")}
[ -f "$DATA/manifest.json" ] || $PY prepare --examples_path "$GMD" --output_dir "$DATA"
JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -n1 || true)
export MALLOC_CONF=retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1
# In a later session (runs/ is not kept), continue from the shipped weights: INIT=1 scripts/train_models.sh
COMMON="--examples_path $DATA --num_steps ${NUM_STEPS:-200000} --checkpoint_secs 120 --eval_every_steps 250 --eval_examples 512 --num_threads ${THREADS:-1}"
# batch 64: 8x more updates per CPU-hour than 512 at the same examples/s; token (word) dropout makes
# the decoder use z early (without it every input reconstructed to one average groove at step 250).
declare -A HP=(
  [lokl]="batch_size=64,token_dropout=0.25"
  [hikl]="batch_size=64,token_dropout=0.5"
  [cat]="batch_size=64,token_dropout=0.25"
)
declare -A CFG=([lokl]=hier-drums_4bar_small [hikl]=hier-drums_4bar_small_hikl [cat]=cat-drums_4bar_small)
mkdir -p runs
for run in ${RUNS:-lokl hikl}; do
  INIT_ARGS=""
  [ -n "${INIT:-}" ] && [ -f "checkpoints/${CFG[$run]}/model.safetensors" ] && INIT_ARGS="--init_from checkpoints/${CFG[$run]}"
  LD_PRELOAD=$JEMALLOC nohup nice -n ${NICE:-0} $PY train --config "${CFG[$run]}" --run_dir "runs/$run" --hparams "${HP[$run]}" $COMMON $INIT_ARGS \
    > "runs/$run.log" 2>&1 &
  echo "started $run (pid $!), log runs/$run.log"
done
