"""Dataset cards in datasets/ agree with the medmnist package and the engine."""

import medmnist
import pytest
import yaml
from conftest import REPO

from bench.compute import data


@pytest.mark.parametrize("flag", data.FLAGS_2D)
def test_card_matches_medmnist_info(flag):
    card = yaml.safe_load((REPO / "datasets" / f"{flag}.yaml").read_text())
    info = medmnist.INFO[flag]
    assert card["md5"][28] == info["MD5"] == data.expected_md5(flag, 28)
    assert card["splits"] == info["n_samples"]
    assert card["task"] == info["task"] and card["licence"] == info["license"]
    assert len(card["labels"]) == data.info(flag).n_classes


def test_synthetic_card_matches_the_generator():
    card = yaml.safe_load((REPO / "datasets" / "synthetic.yaml").read_text())
    ds = data.load("synthetic")
    assert card["splits"] == {"train": len(ds.train), "val": len(ds.val), "test": len(ds.test)}
    assert len(card["labels"]) == ds.info.n_classes
