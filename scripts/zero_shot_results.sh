#!/usr/bin/env bash
# Zero-shot results on the real clips of ../shared/realdata (docs/RESULTS.md): the trained demo model and the
# training-free inflection-energy detector, temporal and counting protocols, via `ta2net eval-videos`.
# Environment: WORKDIR (default runs/demo, needs detector.json from `ta2net eval`), REALDATA
# (default ../shared/realdata), OUT (default runs/zero_shot). Writes $OUT/<set>[_112]/report.md + results.json
# and $OUT/tables.md (the tables of docs/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR=${WORKDIR:-runs/demo}
REALDATA=${REALDATA:-../shared/realdata}
OUT=${OUT:-runs/zero_shot}
PY=${PYTHON:-python}
command -v ta2net >/dev/null || { echo "ta2net not on PATH: source .venv/bin/activate"; exit 1; }
[ -f "$WORKDIR/detector.json" ] || { echo "$WORKDIR/detector.json missing: run ta2net eval first"; exit 1; }
declare -A VIDEOS=([audible623_ucf101]="$REALDATA/ucf101_audible623"
                   [greatest_hits]="$REALDATA/greatest_hits_condfoleygen"
                   [repcount]="$REALDATA/repcount_ucfrep")
declare -A LABELS=([audible623_ucf101]="$REALDATA/ucf101_audible623/labels.json"
                   [greatest_hits]="$REALDATA/greatest_hits_condfoleygen/audio_onsets.json"
                   [repcount]="$REALDATA/repcount_ucfrep/repcount_samples_labels.json")
for set in audible623_ucf101 greatest_hits repcount; do
  # The demo model and the inflection detector on the model's inputs (48 px, thresholds tuned on synthetic val).
  ta2net eval-videos "${VIDEOS[$set]}" --labels "${LABELS[$set]}" --workdir "$WORKDIR" --method both \
    --out-dir "$OUT/$set" --name "$set (demo model, 48 px)"
  # The training-free detector as `ta2net detect --method inflection` runs it alone: 112 px, threshold 2.
  ta2net eval-videos "${VIDEOS[$set]}" --labels "${LABELS[$set]}" --method inflection \
    --out-dir "$OUT/${set}_112" --name "$set (inflection, 112 px)"
done
$PY - "$OUT" <<'PYEOF'
import sys
from ta2net_jax.evaluation.videos import summary_tables
out = sys.argv[1]
runs = [(s, label, f"{out}/{d}/results.json") for s in ("audible623_ucf101", "greatest_hits", "repcount")
        for d, label in ((s, "48 px:"), (s + "_112", "112 px:"))]
text = summary_tables(runs)
open(f"{out}/tables.md", "w").write(text)
print(text)
PYEOF
echo "tables: $OUT/tables.md"
