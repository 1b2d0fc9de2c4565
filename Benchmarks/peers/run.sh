#!/usr/bin/env bash
# `make bench-peers`: Conclave against its peers, one benchmark at a time on an idle machine, written to
# Benchmarks/peers/results/<date>.md with the machine, the OpenBLAS core and every command.
#   - a local epoch (MLP 784-256-10, 60,000 Fashion-MNIST images, batch 64) vs PyTorch CPU, 1 and 2 threads
#   - a DP-SGD epoch (MLP 784-128-10, C = 1, σ = 1, Poisson sampling, 1 thread) vs Opacus with ghost clipping,
#     at 12,000 / 60,000 records × batch 256 / 2,048
# The peers live in a git-ignored venv (Benchmarks/peers/.venv) made from PyPI on first use; they are
# measurement tools only, never dependencies of Conclave.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$here/.venv"
conclave="$root/.build/release/conclave"
[ -x "$conclave" ] || { echo "build first: make build" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, opacus" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q torch opacus numpy
fi
py="$venv/bin/python"
date=$(date -u +%Y-%m-%d)
out="$here/results/$date.md"
mkdir -p "$here/results"
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cores=$(nproc)
core=$("$conclave" blas --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["core"])')
field() { "$py" -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
ratio() { "$py" -c "print(f'{$1/$2:.2f}')"; }

{
  echo "# Conclave vs peers, $date"
  echo
  echo "Machine: $cpu, $cores cores; OpenBLAS core in use: $core (\`conclave blas\`); $("$py" -c 'import torch; print("PyTorch", torch.__version__)'), $("$py" -c 'import opacus; print("Opacus", opacus.__version__)')."
  echo "Command: \`make bench-peers\` (Benchmarks/peers/run.sh). Each figure is the best of 3 repetitions; one benchmark at a time."
  echo
  echo "## Local epoch: MLP 784-256-10, 60,000 images, batch 64"
  echo
  echo "| threads | PyTorch (s) | Conclave (s) | Conclave / PyTorch | Conclave sgemm floor (s) | epoch / floor |"
  echo "|---|---|---|---|---|---|"
} > "$out"
for t in 1 2; do
  torch_cmd="cd Benchmarks/peers && .venv/bin/python torch_epoch.py $t 256 64"
  ours_cmd=".build/release/conclave bench training --threads $t --hidden 256 --batch-size 64 --json"
  p=$(cd "$here" && OMP_NUM_THREADS=$t "$py" torch_epoch.py "$t" 256 64 | field epoch_seconds)
  j=$(cd "$root" && $ours_cmd 2>/dev/null)
  c=$(echo "$j" | field epoch_seconds); f=$(echo "$j" | field sgemm_seconds)
  echo "| $t | $(printf %.3f "$p") | $(printf %.3f "$c") | $(ratio "$c" "$p") | $(printf %.3f "$f") | $(ratio "$c" "$f") |" >> "$out"
  echo "    $torch_cmd" >> "$here/.commands"; echo "    $ours_cmd" >> "$here/.commands"
done
{
  echo
  echo "## DP-SGD epoch: MLP 784-128-10, C = 1, σ = 1, Poisson sampling, 1 thread"
  echo
  echo "| records | batch | Opacus ghost clipping (s) | Conclave (s) | Opacus / Conclave | Conclave private / plain |"
  echo "|---|---|---|---|---|---|"
} >> "$out"
for n in 12000 60000; do
  for b in 256 2048; do
    opacus_cmd="cd Benchmarks/peers && .venv/bin/python opacus_epoch.py $n $b ghost"
    ours_cmd=".build/release/conclave bench dpsgd --examples $n --batch-size $b --threads 1 --json"
    o=$(cd "$here" && OMP_NUM_THREADS=1 "$py" opacus_epoch.py "$n" "$b" ghost | field epoch_seconds)
    j=$(cd "$root" && $ours_cmd 2>/dev/null)
    c=$(echo "$j" | field private_epoch_seconds); r=$(echo "$j" | field ratio)
    echo "| $n | $b | $(printf %.3f "$o") | $(printf %.3f "$c") | $(ratio "$o" "$c") | $(printf %.2f "$r") |" >> "$out"
    echo "    $opacus_cmd" >> "$here/.commands"; echo "    $ours_cmd" >> "$here/.commands"
  done
done
{
  echo
  echo "Commands (from the repository root unless they cd):"
  echo
  cat "$here/.commands"
} >> "$out"
rm -f "$here/.commands"
cat "$out"
