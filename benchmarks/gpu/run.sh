# The GPU runs of docs/benchmarks.md, as sent to the lent machine (no network there): run from the
# repository root with a prepared, git-ignored .gpu/ folder carried along:
#   .gpu/whl/      wheels the machine lacked (datasets, evaluate, dill, multiprocess, peft, transformers)
#   .gpu/minilm16/ all-MiniLM-L6-v2 with its weights stored fp16 (to fit the 64 MiB transfer); converted
#                  back to fp32 below before anything runs
#   .gpu/imdb/     train.parquet / test.parquet: the 512 / 1,000 reviews the CPU run uses
#                  (split.shuffle(seed=42).select(range(n)) of ../shared/data/imdb)
# PROFILE=1 also runs benchmarks/gpu/step_times.py (per-step times, fp32 vs bf16 backbone).
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
MODEL=${MODEL:-/tmp/minilm}
python3 -c "import torch,transformers,datasets,peft,pyarrow,accelerate;print(torch.__version__,transformers.__version__,datasets.__version__,peft.__version__,pyarrow.__version__,accelerate.__version__,torch.cuda.is_available() and torch.cuda.get_device_name())" || exit 1
python3 - <<'PY' || exit 1
import os, shutil
from safetensors.torch import load_file, save_file
dst = os.environ.get("MODEL", "/tmp/minilm")
os.makedirs(dst, exist_ok=True)
for f in os.listdir(".gpu/minilm16"):
    if f != "model.safetensors":
        shutil.copy(os.path.join(".gpu/minilm16", f), os.path.join(dst, f))
t = load_file(".gpu/minilm16/model.safetensors")  # stored fp16 to travel; the benchmark loads fp32
save_file({k: v.float() if v.is_floating_point() else v for k, v in t.items()}, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
print("model ready", dst)
PY
[ -n "$PROFILE" ] && python3 benchmarks/gpu/step_times.py 2>&1 | tee ${OUT:-/tmp/out}/prof.txt
python3 benchmarks/prompt_tuning.py --model $MODEL --data .gpu/imdb --setups ${SETUPS:-chapter,peft,softprompt,softprompt-bf16} --workdir /tmp/bench ${EXTRA} --out ${OUT:-/tmp/out}/gpu.json 2>&1 | tee ${OUT:-/tmp/out}/log.txt
rc=$?
for s in chapter peft softprompt softprompt-bf16; do cp /tmp/bench/$s.log ${OUT:-/tmp/out}/$s.log 2>/dev/null; done
exit $rc
