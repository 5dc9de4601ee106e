#!/usr/bin/env bash
# The mnist default's fold 0 unit in float32 and bfloat16, taking turns; the probe before, between and after.
cd /work/main; R=/work/runs/bf16; lscpu > $R/lscpu.txt
export KAGGLE_DATA_DIR=/work/shared/kaggle
probe() {
  python - <<'PY' 2>/dev/null
from common.ground.quiet import load_keras_quietly
load_keras_quietly()
from common.training.backend import resolve_hardware, setup_hardware
from common.ground.config import Config
from common.training.precision import measure_precisions
hw = setup_hardware(Config())
print("probe", measure_precisions(hw))
PY
}
grep -c steal /proc/stat >/dev/null
for i in 1 2; do
  probe >> $R/probe.txt
  for p in off bfloat16; do
    head -1 /proc/stat >> $R/stat.txt
    python run.py mnist --fold 0 --seed 0 mixed_precision=$p holdout=0.1 --out $R/runs > $R/unit-$i-$p.log 2>&1
    echo "$i $p rc=$?" >> $R/done.txt; head -1 /proc/stat >> $R/stat.txt
  done
done
probe >> $R/probe.txt
python - <<'PY' > $R/units.txt
import json, pathlib
for f in sorted(pathlib.Path("/work/runs/bf16/runs").glob("mnist/*/units/*/unit.json"), key=lambda p: p.stat().st_mtime):
    u = json.loads(f.read_text())
    print(f.parts[-4], u.get("precision"), round(u["images_trained"] / u["epoch_seconds"]), "img/s", round(u["epoch_seconds"]), "s")
PY
echo finished >> $R/done.txt
