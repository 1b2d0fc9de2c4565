#!/usr/bin/env bash
# `make bench-peers`: Conclave against its peers, one benchmark at a time on an idle machine, written to
# Benchmarks/peers/results/<date>.md with the machine, the OpenBLAS core and every command.
#   - a local epoch (MLP 784-256-10, 60,000 Fashion-MNIST images, batch 64) vs PyTorch CPU, 1 and 2 threads
#   - a DP-SGD epoch (MLP 784-128-10, C = 1, σ = 1, Poisson sampling, 1 thread) vs Opacus with ghost clipping,
#     at 12,000 / 60,000 records × batch 256 / 2,048
#   - secure aggregation, d = 10⁶, 10 % dropout after key sharing, n = 50 / 100, complete and sparse graphs, vs
#     Flower's SecAggWorkflow / SecAggPlusWorkflow with its secagg(plus)_mod clients; the
#     coordinator's unmasking, Flower's whole round and the per-silo masking (one run each: n = 100 on Flower's
#     complete graph alone takes ~5 minutes)
# The peers live in a git-ignored venv (Benchmarks/peers/.venv) made from PyPI on first use; they are
# measurement tools only, never dependencies of Conclave.
# PEERS_ONLY=training,dpsgd,secagg (any subset, comma-separated) runs only those sections and writes
# results/<date>-<sections>.md instead, so a partial run never overwrites the full table.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$here/.venv"
conclave="$root/.build/release/conclave"
[ -x "$conclave" ] || { echo "build first: make build" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, opacus, flwr" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q torch opacus numpy flwr==1.42.0
fi
py="$venv/bin/python"
date=$(date -u +%Y-%m-%d)
only=${PEERS_ONLY:-}
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
out="$here/results/$date${only:+-${only//,/-}}.md"
mkdir -p "$here/results"
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cores=$(nproc)
core=$("$conclave" blas --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["core"])')
field() { "$py" -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
ratio() { "$py" -c "print(f'{$1/$2:.2f}')"; }
# A pause between benchmarks: right after a peer frees its gigabytes the kernel reclaims and compacts memory for
# a few seconds, and a two-thread run started then measured ~40 % slower (seen 2026-12-05, PyTorch and ours alike).
settle() { sleep "${PEERS_SETTLE:-20}"; }

{
  echo "# Conclave vs peers, $date"
  echo
  echo "Machine: $cpu, $cores cores; OpenBLAS core in use: $core (\`conclave blas\`); $("$py" -c 'import torch; print("PyTorch", torch.__version__)'), $("$py" -c 'import opacus; print("Opacus", opacus.__version__)'), $("$py" -c 'import flwr; print("Flower", flwr.__version__)')."
  echo "Command: \`${only:+PEERS_ONLY=$only }make bench-peers\` (Benchmarks/peers/run.sh). Each figure is the best of 3 repetitions unless its section says otherwise; one benchmark at a time."
} > "$out"
rm -f "$here/.commands"
if want training; then
{
  echo
  echo "## Local epoch: MLP 784-256-10, 60,000 images, batch 64"
  echo
  echo "| threads | PyTorch (s) | Conclave (s) | Conclave / PyTorch | Conclave sgemm floor (s) | epoch / floor |"
  echo "|---|---|---|---|---|---|"
} >> "$out"
for t in 1 2; do
  torch_cmd="cd Benchmarks/peers && .venv/bin/python torch_epoch.py $t 256 64"
  ours_cmd=".build/release/conclave bench training --threads $t --hidden 256 --batch-size 64 --json"
  p=$(cd "$here" && OMP_NUM_THREADS=$t "$py" torch_epoch.py "$t" 256 64 | field epoch_seconds)
  settle
  j=$(cd "$root" && $ours_cmd 2>/dev/null)
  settle
  c=$(echo "$j" | field epoch_seconds); f=$(echo "$j" | field sgemm_seconds)
  echo "| $t | $(printf %.3f "$p") | $(printf %.3f "$c") | $(ratio "$c" "$p") | $(printf %.3f "$f") | $(ratio "$c" "$f") |" >> "$out"
  echo "    $torch_cmd" >> "$here/.commands"; echo "    $ours_cmd" >> "$here/.commands"
done
fi
if want dpsgd; then
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
    settle
    j=$(cd "$root" && $ours_cmd 2>/dev/null)
    settle
    c=$(echo "$j" | field private_epoch_seconds); r=$(echo "$j" | field ratio)
    echo "| $n | $b | $(printf %.3f "$o") | $(printf %.3f "$c") | $(ratio "$o" "$c") | $(printf %.2f "$r") |" >> "$out"
    echo "    $opacus_cmd" >> "$here/.commands"; echo "    $ours_cmd" >> "$here/.commands"
  done
done
fi
if want secagg; then
start=$SECONDS
{
  echo
  echo "## Secure aggregation: d = 10⁶, 10 % dropout"
  echo
  echo "One run of each (no best of 3). Silos drop after sharing keys, so the coordinator must rebuild their pairwise"
  echo "masks. Flower: its own SecAggWorkflow (complete graph, num_shares = n) or SecAggPlusWorkflow (ring of K shares"
  echo "with the client itself, K = our Harary degree + 1) and secagg(plus)_mod ClientApps, all in one process through"
  echo "an in-process Grid with Flower's protobuf serde (\`flower_secagg.py\`; no gRPC, no Ray). Flower unmask = the"
  echo "server's unmask stage from holding the shares to aggregate_fit (Shamir recombination for every client, self"
  echo "masks of the live ones, ECDH + pairwise masks per neighbour of the dropped ones); whole round = the fit"
  echo "workflow, clients included (this process's CPU in brackets). Conclave unmask = \`SecAggServer.finish\`"
  echo "(\`unmask_seconds\`), complete graph against SecAgg and \`--graph sparse\` (the Harary graph its coordinator picks"
  echo "above 100 silos) against SecAgg+ with the same neighbourhood (K = degree + 1) and threshold."
  echo
  echo "| n | Flower | Conclave | Flower unmask (s) | Conclave unmask, 2 / 1 threads (s) | Flower / Conclave, 2 / 1 threads | Flower whole round (s) [CPU] | mask per silo, Flower / Conclave (s) |"
  echo "|---|---|---|---|---|---|---|---|"
} >> "$out"
# flower N MODE [K T]: one Flower round as JSON; conclave_secagg N THREADS: one `conclave bench secagg` as JSON.
flower() {
  local cmd="cd Benchmarks/peers && .venv/bin/python flower_secagg.py $1 1000000 0.1 $2${3:+ $3 $4}"
  echo "    $cmd" >> "$here/.commands"
  (cd "$here" && "$py" flower_secagg.py "$1" 1000000 0.1 "$2" ${3:+"$3" "$4"})
}
conclave_secagg() {  # N THREADS GRAPH
  local cmd=".build/release/conclave bench secagg --silos $1 --params 1000000 --dropout 0.1 --threads $2 --graph $3 --json"
  echo "    $cmd" >> "$here/.commands"
  (cd "$root" && $cmd 2>/dev/null)
}
# A ratio with as many decimals as it needs (they reach the hundreds here).
ratio_g() { "$py" -c "r = $1 / $2; print(f'{r:.0f}' if r >= 100 else f'{r:.1f}' if r >= 10 else f'{r:.2f}')"; }
# The graph a `conclave bench secagg` JSON line reports.
graph() {
  echo "$1" | "$py" -c 'import json,sys
j = json.loads(sys.stdin.read().strip().splitlines()[-1]); n, k, t = j["silos"], j["neighbours"], j["threshold"]
print(("complete" if k == n - 1 else f"Harary, degree {k}") + f", t = {t}")'
}
secagg_row() {  # N FLOWER_JSON CONCLAVE_JSON_2_THREADS CONCLAVE_JSON_1_THREAD CONCLAVE_NOTE
  local f=$2 c2=$3 c1=$4 fl cl fu cu2 cu1
  fu=$(echo "$f" | field unmask_seconds); cu2=$(echo "$c2" | field unmask_seconds); cu1=$(echo "$c1" | field unmask_seconds)
  if [ "$(echo "$f" | field mode)" = secagg ]; then fl="SecAgg, complete"; else fl="SecAgg+, K = $(echo "$f" | field num_shares)"; fi
  fl="$fl, t = $(echo "$f" | field threshold)"
  [ "$(echo "$f" | field correct)" = True ] || fl="$fl (WRONG SUM)"
  cl="$(graph "$c2")$5"
  [ "$(echo "$c2" | field exact)" = True ] || cl="$cl (WRONG SUM)"
  echo "| $1 | $fl | $cl | $(printf %.2f "$fu") | $(printf %.3f "$cu2") / $(printf %.3f "$cu1") | $(ratio_g "$fu" "$cu2") / $(ratio_g "$fu" "$cu1") | $(printf %.1f "$(echo "$f" | field round_seconds)") [$(printf %.1f "$(echo "$f" | field cpu_seconds)")] | $(printf %.3f "$(echo "$f" | field mask_seconds)") / $(printf %.4f "$(echo "$c2" | field mask_seconds)") |" >> "$out"
}
# Complete graphs against Flower's SecAgg; Conclave's sparse (Harary) graph — the one its coordinator picks above
# 100 silos, forced here with --graph sparse — against Flower's SecAgg+ with the same neighbourhood: K = degree + 1
# (Flower's K counts the client itself) and the same threshold t.
for n in 50 100; do
  c2=$(conclave_secagg "$n" 2 complete); c1=$(conclave_secagg "$n" 1 complete)
  secagg_row "$n" "$(flower "$n" secagg "$n" "$(echo "$c2" | field threshold)")" "$c2" "$c1" ""
  c2=$(conclave_secagg "$n" 2 sparse); c1=$(conclave_secagg "$n" 1 sparse)
  k=$(( $(echo "$c2" | field neighbours) + 1 )); t=$(echo "$c2" | field threshold)
  secagg_row "$n" "$(flower "$n" secaggplus "$k" "$t")" "$c2" "$c1" ""
done
echo >> "$out"
echo "The secure-aggregation section took $(( (SECONDS - start + 30) / 60 )) min." >> "$out"
fi
{
  echo
  echo "Commands (from the repository root unless they cd):"
  echo
  cat "$here/.commands"
} >> "$out"
rm -f "$here/.commands"
cat "$out"
