#!/usr/bin/env bash
# Generalisation ablations at equal wall time (issue 14): each recipe continues the shipped high-KL
# model for the same number of minutes, side by side, one torch thread each, validation every 150
# steps into runs/abl-NAME/curve.jsonl. Compare with: .venv/bin/python scripts/compare_runs.py
#   MINUTES=25 scripts/ablations.sh                # all recipes below
#   ABLATIONS="base aug" MINUTES=25 scripts/ablations.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/musicvae
DATA=${DATA:-data/gmd}
[ -f "$DATA/manifest.json" ] || $PY prepare --examples_path "$(.venv/bin/python -c "from musicvae.data import default_gmd_dir; print(default_gmd_dir())")" --output_dir "$DATA"
JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -n1 || true)
export MALLOC_CONF=retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1
BASE="batch_size=64,token_dropout=0.5"
AUG="aug_layer_mix=0.5,aug_timekeeper_swap=0.2,aug_tom_permute=0.3,aug_crash_ride_swap=0.1,aug_bar_recombine=0.25"
declare -A HP=(
  [base]="$BASE"
  [aug]="$BASE,$AUG"
  [denoise]="$BASE,denoise_prob=0.5"
  [reg]="$BASE,dropout_keep_prob=0.8,weight_decay=0.01"
  [fp32]="$BASE"
)
declare -A FLAGS=([base]="--bf16" [aug]="--bf16" [denoise]="--bf16" [reg]="--bf16" [fp32]="")
mkdir -p runs
for name in ${ABLATIONS:-base aug denoise reg}; do
  LD_PRELOAD=$JEMALLOC nohup timeout -s INT "${MINUTES:-25}m" $PY train --config hier-drums_4bar_small_hikl \
    --run_dir "runs/abl-$name" --examples_path "$DATA" --num_steps 100000 --hparams "${HP[$name]}" ${FLAGS[$name]} \
    --init_from checkpoints/hier-drums_4bar_small_hikl --eval_every_steps 150 --eval_examples 512 \
    --checkpoint_secs 300 --num_threads 1 > "runs/abl-$name.log" 2>&1 &
  echo "started $name (pid $!), log runs/abl-$name.log"
done
