#!/bin/bash
# One device call: every GPU benchmark, each under its own timeout, results written to $OUT as they finish.
# The GPU machine has jax/flax/optax/chex/orbax and torch but no tensorflow-datasets, no ml_collections and no
# ../shared. Prepare a git-ignored device_carry/ first, here, from the repo root: `bash benchmarks/device/gpu.sh prepare`
# (copies ../shared/data/nasbench201 and the PyTorch reference ../shared/bench/torch_nb201_loop.py, and downloads
# the ml_collections wheel), then on the device machine, with device_carry carried:
#   OUT=$OUT bash benchmarks/device/gpu.sh
# `QUICK=1 PY=.venv/bin/python REFPY=.refvenv/bin/python OUT=/tmp/o bash benchmarks/device/gpu.sh` runs a short
# version here on the CPU first (EXTRA_PATH=a folder whose tensorflow_datasets.py raises ImportError checks that
# nothing needs TFDS). The timeouts were sized for an H100; steps that ran out were rerun
# on the same warm machine with smaller settings (see benchmarks/RESULTS.md, "GPU").
if [ "${1:-}" = prepare ]; then
  mkdir -p device_carry/whl && cp -r ../shared/data/nasbench201 ../shared/bench/torch_nb201_loop.py device_carry/ &&
    .venv/bin/python -m pip download -q --no-deps ml_collections==1.1.0 -d device_carry/whl; exit $?
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT; LOG=$OUT/log.txt
PY=${PY:-python3}; Q=${QUICK:-0}; REFPY=${REFPY:-$PY}  # REFPY: a python with torch (QUICK=1 here: .refvenv/bin/python)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site device_carry/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD:$PWD/benchmarks:${EXTRA_PATH:-}
export JAXNAS_NB201_CSV=$PWD/device_carry/nasbench201/nb201_cifar10_valid.csv
{ date; nvidia-smi -L; $PY -c "import jax, flax, optax, chex, orbax.checkpoint as o; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"; } >> $LOG 2>&1
step() { local t=$1; shift; echo "=== $(date +%T) $*" >> $LOG; timeout $t "$@" >> $LOG 2>&1; echo "=== rc=$? $(date +%T)" >> $LOG; }
if [ "$Q" = 1 ]; then
  step 300 $PY benchmarks/stylegan_train.py --configs cpu16 --steps 2 --rounds 1 --out $OUT/stylegan_train_gpu.json
  step 300 $PY benchmarks/neat_vs_neat_python.py --seeds 2 --max-generations 10 --pops 150 --timing-generations 2 --skip-neat-python --out $OUT/neat_vs_neat_python_gpu.json
  step 300 $PY benchmarks/cyclegan_train.py --configs cpu --batches 1 --steps 2 --rounds 1 --out $OUT/cyclegan_train_gpu.json
  step 600 $PY benchmarks/population_training.py --ref-python $REFPY --reference device_carry/torch_nb201_loop.py --steps 3 --torch-archs 1 --executions vmap --pops 2 --repeats 1 --torch-modes eager --check-steps 2 --publish population_training_gpu --out-dir $OUT
  step 300 $PY benchmarks/nb201_search_speed.py --runs 20 --repeats 1 --strategies random --out $OUT/nb201_search_speed_gpu.json
else
  # one step per StyleGAN config: a compile that outruns its timeout loses only its own figure
  step 80 $PY benchmarks/stylegan_train.py --configs cpu --steps 32 --rounds 3 --out $OUT/stylegan_train_gpu.json
  step 110 $PY benchmarks/stylegan_train.py --configs official --steps 8 --rounds 2 --out $OUT/stylegan_official_gpu.json
  step 110 $PY benchmarks/neat_vs_neat_python.py --seeds 20 --pops 150,1000,10000,100000 --timing-generations 10 --skip-neat-python --out $OUT/neat_vs_neat_python_gpu.json
  # population training, the engine against the PyTorch reference on the same work (one command, alternating, medians,
  # ratios): engine-seq is P=1 on the torch architectures; our compile is excluded and recorded as engine_compile_s;
  # the JSON is rewritten after the compiles and after every repeat, so a timeout keeps what was done. The same-work
  # check runs the engine on the GPU (TF32 matmuls possible) against torch on the CPU: recorded, not fatal.
  # vmap only on a GPU (map runs candidates one after another: a CPU execution); then bf16 inputs (f32 accumulation).
  step 420 $PY benchmarks/population_training.py --ref-python $REFPY --reference device_carry/torch_nb201_loop.py --torch-device cuda --torch-modes eager,compile-warm --torch-archs 4 --executions vmap --pops 8,32,128,256,1024 --repeats 3 --threads 0 --check-rtol 0.02 --on-check-failure record --publish population_training_gpu --out-dir $OUT
  step 240 $PY benchmarks/population_training.py --ref-python $REFPY --reference device_carry/torch_nb201_loop.py --torch-device cuda --torch-modes eager --torch-archs 4 --executions vmap --dtype bfloat16 --no-seq --pops 32,256,1024 --repeats 2 --threads 0 --check-rtol 0.05 --on-check-failure record --publish population_training_gpu_bf16 --out-dir $OUT
  step 60 $PY benchmarks/cyclegan_train.py --configs cpu,paper --batches 1,16 --out $OUT/cyclegan_train_gpu.json
  step 60 $PY benchmarks/nb201_search_speed.py --repeats 1 --strategies random,aging_evolution,reinforce --out $OUT/nb201_search_speed_gpu.json
fi
date >> $LOG
