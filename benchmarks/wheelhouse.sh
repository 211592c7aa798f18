#!/usr/bin/env bash
# The wheels an offline GPU node lacks (its image has torch, timm, pandas, scipy, matplotlib,
# safetensors, tabulate, tqdm, filelock, PyYAML and Pillow; see DESIGN.md "GPU machine facts"),
# downloaded on a machine with a package index for Python 3.12 manylinux x86-64:
#   bash benchmarks/wheelhouse.sh DIR      (DIR defaults to .whl, which .gitignore covers)
# then, on the node: bash benchmarks/device_checks.sh cuda --wheels DIR --out REPORT_DIR
set -euo pipefail
dir=${1:-.whl}
mkdir -p "$dir"
python=${PYTHON:-python}
# the versions pyproject.toml allows; --no-deps: exactly these, nothing the image already has
wheels=(
    "pot>=0.9.6"
    "omegaconf>=2.3"
    "mlxtend>=0.23"
    "submitit>=1.5"
)
# POT's Linux wheels from 0.9.6 on are tagged manylinux_2_28 (2_24), not manylinux2014
"$python" -m pip download --quiet --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    --python-version 3.12 --implementation cp --no-deps --dest "$dir" "${wheels[@]}"
# OmegaConf 2.3 pins antlr4-python3-runtime 4.9.*, published only as a source archive: build its
# pure-Python wheel (py3-none-any, good for 3.12) here
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$dir" "antlr4-python3-runtime==4.9.3"
ls -1 "$dir"/*.whl
