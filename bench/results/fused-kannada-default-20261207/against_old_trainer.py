"""The fused step's full-data models against the old trainer's, on Dig-MNIST and its halves (McNemar).

PYTHONPATH=. python bench/results/fused-kannada-default-20261207/against_old_trainer.py NEW_RUN_FOLDER OLD_RUN_FOLDER
"""

import sys
from pathlib import Path

import numpy as np

from common.data.files import load_dataset
from common.ground.spec import get_spec
from common.runs.stats import mcnemar


def dig_mnist(run: Path, unit: str) -> np.ndarray:
    return np.load(run / "units" / unit / "dig_mnist.npy")


new, old = Path(sys.argv[1]), Path(sys.argv[2])
data = load_dataset(get_spec("kannada"), "../shared/kaggle")
sides = {
    "new all-s0": dig_mnist(new, "all-s0"),
    "new all-s0+all-s1": (dig_mnist(new, "all-s0") + dig_mnist(new, "all-s1")) / 2,
}
base = data.scored_sets({"dig_mnist": dig_mnist(old, "all-s0")})
for label, probabilities in sides.items():
    for name, (labels, scored) in data.scored_sets({"dig_mnist": probabilities}).items():
        a, b = scored.argmax(1) == labels, base[name][1].argmax(1) == labels
        r = mcnemar(a, b)
        print(
            f"{name}: {label} {a.mean():.5f} against the old trainer's model {b.mean():.5f}: +{r.only_a}/-{r.only_b}, p = {r.p_value:.3g}"
        )
