#!/usr/bin/env bash
# Trains (or resumes) the shipped models on GMD in the background, one thread each, with jemalloc,
# bf16 autocast where the CPU has bf16 units. Re-running this script resumes every run from its
# newest checkpoint; each run keeps its best-validation model in runs/NAME/best (what ships).
#   scripts/train_models.sh            # both shipped models (the generalisation recipe)
#   RUNS="cat" scripts/train_models.sh # only the flat baseline
#   RUNS="humanize humanize_flat" scripts/train_models.sh  # the groove (humanize) model and its flat twin
# The recipe configs (hier-drums_4bar_small_aug, ..._hikl_aug) continue the previous shipped
# weights (INIT=DIR or the old model folders) with a fresh optimizer and a 5,000-step cosine schedule.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/musicvae
DATA=${DATA:-data/gmd}
GMD=${GMD:-$(.venv/bin/python -c "from musicvae.data.sources import default_gmd_dir; print(default_gmd_dir())")}
[ -f "$DATA/manifest.json" ] || $PY prepare --examples_path "$GMD" --output_dir "$DATA"
JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -n1 || true)
export MALLOC_CONF=retain:true,dirty_decay_ms:-1,muzzy_decay_ms:-1
BF16=$(grep -q -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo --bf16 || true)
COMMON="--examples_path $DATA --checkpoint_secs 300 --eval_every_steps ${EVAL:-400} --eval_examples 1832 --num_threads ${THREADS:-1} $BF16"
declare -A CFG=([lokl]=hier-drums_4bar_small_aug [hikl]=hier-drums_4bar_small_hikl_aug [cat]=cat-drums_4bar_small
                [humanize]=groovae-hier_4bar_humanize [humanize_flat]=groovae_4bar_humanize)
declare -A HP=([lokl]="" [hikl]="" [cat]="batch_size=64,token_dropout=0.25")
# Where each recipe run starts from: the weights shipped before the recipe. They left checkpoints/
# when the recipe models shipped; to reproduce: git worktree add /tmp/prev 565ff40 && PREV=/tmp/prev/checkpoints
PREV=${PREV:-checkpoints}
declare -A FROM=([lokl]=$PREV/hier-drums_4bar_small [hikl]=$PREV/hier-drums_4bar_small_hikl)
declare -A STEPS=([lokl]=11509 [hikl]=11750 [cat]=200000 [humanize]=6000 [humanize_flat]=6000)  # recipe: start + 5,000
mkdir -p runs
for run in ${RUNS:-lokl hikl}; do
  INIT_ARGS=""
  init=${INIT:-${FROM[$run]:-}}
  [ -n "$init" ] && [ -f "$init/model.safetensors" ] && INIT_ARGS="--init_from $init"
  LD_PRELOAD=$JEMALLOC nohup nice -n ${NICE:-0} $PY train --config "${CFG[$run]}" --run_dir "runs/$run" \
    ${HP[$run]:+--hparams ${HP[$run]}} --num_steps "${NUM_STEPS:-${STEPS[$run]}}" $COMMON $INIT_ARGS \
    > "runs/$run.log" 2>&1 &
  echo "started $run (pid $!), log runs/$run.log"
done
