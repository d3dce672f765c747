#!/usr/bin/env bash
# Generalisation ablations at equal wall time (issue 14), side by side, one torch thread each,
# validation every EVAL steps into runs/abl-NAME/curve.jsonl (compare with scripts/compare_runs.py).
#   MINUTES=25 scripts/ablations.sh                       # continuation recipes: base aug denoise reg
#   ABLATIONS="scratch-spec scratch-glorot scratch-flat" MINUTES=20 scripts/ablations.sh
# Continuation recipes start from the shipped high-KL weights (fresh optimizer); scratch-* start
# from random weights with the aug recipe: the hierarchy with the spec's z->conductor init, with
# Glorot init, and the flat decoder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/musicvae
DATA=${DATA:-data/gmd}
[ -f "$DATA/manifest.json" ] || $PY prepare --examples_path "$(.venv/bin/python -c "from musicvae.data.sources import default_gmd_dir; print(default_gmd_dir())")" --output_dir "$DATA"
JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -n1 || true)
export MALLOC_CONF=retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1
HIKL=hier-drums_4bar_small_hikl
BASE="batch_size=64,token_dropout=0.5"
AUG="aug_layer_mix=0.5,aug_timekeeper_swap=0.2,aug_tom_permute=0.3,aug_crash_ride_swap=0.1,aug_bar_recombine=0.25"
# The continuation recipes start from the high-KL model shipped before the recipe (it left checkpoints/
# when the recipe models shipped): git worktree add /tmp/prev 565ff40 && PREV=/tmp/prev/checkpoints
INIT="--init_from ${PREV:-checkpoints}/$HIKL"
declare -A HP=(
  [base]="$BASE" [fp32]="$BASE" [aug]="$BASE,$AUG" [denoise]="$BASE,denoise_prob=0.5"
  [reg]="$BASE,dropout_keep_prob=0.8,weight_decay=0.01"
  [scratch-spec]="$BASE,$AUG" [scratch-glorot]="$BASE,$AUG,conductor_init=glorot"
  [scratch-flat]="$BASE,$AUG,free_bits=256"
)
declare -A CFG=([scratch-flat]=cat-drums_4bar_small)
declare -A FLAGS=([fp32]="$INIT" [scratch-spec]="--bf16" [scratch-glorot]="--bf16" [scratch-flat]="--bf16")
mkdir -p runs
for name in ${ABLATIONS:-base aug denoise reg}; do
  LD_PRELOAD=$JEMALLOC nohup timeout -s INT "${MINUTES:-25}m" $PY train --config "${CFG[$name]:-$HIKL}" \
    --run_dir "runs/abl-$name" --examples_path "$DATA" --num_steps 100000 --hparams "${HP[$name]}" \
    ${FLAGS[$name]:---bf16 $INIT} --eval_every_steps "${EVAL:-150}" --eval_examples 512 \
    --checkpoint_secs 300 --num_threads 1 > "runs/abl-$name.log" 2>&1 &
  echo "started $name (pid $!), log runs/abl-$name.log"
done
