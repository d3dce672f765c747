#!/usr/bin/env bash
# Turns the best-validation models of runs/lokl and runs/hikl (runs/NAME/best, kept by
# `musicvae train --eval_every_steps`; the newest checkpoint where a run has none) into the shipped folders:
# export weights + config, test-split report (metrics.json and config metrics), model card,
# latent directions with measured attribute vectors.  Runs the two models in parallel, 1 thread each.
# CARDS_ONLY=1 only rewrites the model cards.
# RUNS=humanize ships the groove (humanize) model of runs/humanize: report against its baselines, its card
# (scripts/make_groove_card.py, with the flat twin runs/humanize_flat when it exists), no latent directions.
# HALF=1 stores float16 weights (the report then measures exactly the shipped fp16 weights).
set -euo pipefail
cd "$(dirname "$0")/.."
MV=.venv/bin/musicvae
DATA=${DATA:-data/gmd}
GMD=${GMD:-$(.venv/bin/python -c "from musicvae.data.sources import default_gmd_dir; print(default_gmd_dir())")}
declare -A NAME=([lokl]=hier-drums_4bar_small_aug [hikl]=hier-drums_4bar_small_hikl_aug
                 [humanize]=groovae-hier_4bar_humanize)
declare -A PURPOSE=([lokl]="sampling: the default model for Sample, Latent sliders and Grid (low KL, 48 free bits)"
                    [hikl]="encoding uploads and interpolating: the default for Interpolate (high KL, 256 free bits)")
groove_card() {
  local flat=""
  [ -f runs/humanize_flat_report.json ] && flat="--flat runs/humanize_flat_report.json"
  .venv/bin/python scripts/make_groove_card.py "checkpoints/${NAME[$1]}" "runs/$1" $flat \
    --purpose "humanizing: the Humanize switch in the app, \`generate --mode humanize\` and \`--humanize\`" \
    --command "scripts/train_models.sh (run $1: musicvae train --config ${NAME[$1]} --bf16 ...)" \
    --training_precision "$(grep -q -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo 'bfloat16 autocast, float32 master weights' || echo float32)"
}
card() {
  local run=$1 out=checkpoints/${NAME[$1]}
  if [ "$run" = humanize ]; then groove_card "$run"; return; fi
  .venv/bin/python scripts/make_model_card.py "$out" "runs/$run" --purpose "${PURPOSE[$run]}" \
    --command "scripts/train_models.sh (run $run: musicvae train --config ${NAME[$run]} --bf16 --init_from the previous shipped model ...)" \
    --training_precision "$(grep -q -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo 'bfloat16 autocast, float32 master weights' || echo float32)" \
    --limitations "${LIMITS:-More in the README, section Models.}"
}
ship() {
  local run=$1 out=checkpoints/${NAME[$1]}
  local source="runs/$run"
  [ -f "runs/$run/best/model.safetensors" ] && source="runs/$run/best"
  $MV export --checkpoint "$source" --output_dir "$out" ${HALF:+--half}
  $MV report --checkpoint "$out" --examples_path "$DATA" --split test --gmd_root "$GMD" --num_threads 1 \
    --output "$out/metrics.json" > /dev/null
  $MV export --checkpoint "$out" --output_dir "$out" --metrics "$out/metrics.json" ${HALF:+--half}  # same weights as reported
  card "$run"
  [ "$run" = humanize ] && return
  OMP_NUM_THREADS=1 $MV directions --checkpoint "$out" --examples_path "$DATA" > "$out/directions.log"
}
for run in ${RUNS:-lokl hikl}; do if [ -n "${CARDS_ONLY:-}" ]; then card "$run"; else ship "$run" & fi; done
wait
echo shipped
