#!/usr/bin/env bash
# Prepares what a GPU machine without network needs beside this project's code (at most 64 MiB together):
#   .whl/   the wheels it lacks (its image has Python 3.12, JAX and PyTorch for CUDA 13, numpy, pandas, scikit-learn,
#           scipy, OpenCV, PyYAML, tqdm, tabulate, matplotlib, h5py, ml-dtypes, rich, absl-py: KINDS.md of the device
#           tool). Only what it lacks travels: a second ml-dtypes ahead of the image's could break its jaxlib.
#           Dask and its missing needs travel for the check's step with several units at once on the GPU.
#   .data/  the competition zips (from KAGGLE_DATA_DIR, default ../shared/kaggle)
# Both folders are ignored by git. On the GPU machine:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#   KERAS_BACKEND=jax python3 -m bench.gpu_check --out results --data-dir .data
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl .data
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl \
  keras==3.15.1 namex==0.1.0 optree==0.20.0 albumentations==2.0.8 albucore==0.0.24 simsimd==6.5.16 \
  stringzilla==5.3.2 pydantic==2.14.4 pydantic-core==2.50.5 typing-inspection==0.4.5 annotated-types==0.8.0 \
  python-slugify==9.2.0 text-unidecode typing-extensions \
  dask==2026.8.0 distributed==2026.8.0 partd==1.4.2 locket==1.0.0 tblib==3.2.2 tornado==6.6.1 zict==3.0.0
cp "${KAGGLE_DATA_DIR:-../shared/kaggle}"/{digit-recognizer,Kannada-MNIST}.zip .data/
du -sh .whl .data
