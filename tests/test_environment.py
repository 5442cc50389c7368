"""The installed stack works together: torch with torchvision, and the thread setting."""

import pytest
import torch
import torchvision
from torchvision.ops import nms

from coursepkg.util.runtime import use_available_cores


def test_torch_and_torchvision_import_and_run_together():
    # torchvision's compiled ops fail to register against a mismatched torch
    # ("operator torchvision::nms does not exist"): run one.
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.9], [2.0, 2.0, 3.0, 3.0]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torchvision.__version__.split(".")[:2] >= ["0", "29"]


def test_use_available_cores_matches_the_cpu_affinity():
    before = torch.get_num_threads()
    try:
        cores = use_available_cores()
        assert cores >= 1
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)


def test_use_available_cores_can_cap_the_threads():
    before = torch.get_num_threads()
    try:
        assert use_available_cores(max_threads=1) == 1 and torch.get_num_threads() == 1
        assert use_available_cores(max_threads=10_000) == use_available_cores()
        with pytest.raises(ValueError, match="max_threads must be at least 1"):
            use_available_cores(max_threads=0)
    finally:
        torch.set_num_threads(before)


def test_use_available_cores_honours_omp_num_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert use_available_cores() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        everything = use_available_cores()
        monkeypatch.setenv("OMP_NUM_THREADS", "10000,2")  # nested levels: the first one counts
        assert use_available_cores() == everything
        for bad in ("0", "two", "-1"):
            monkeypatch.setenv("OMP_NUM_THREADS", bad)
            with pytest.raises(ValueError, match=f"OMP_NUM_THREADS='{bad}' is not a positive number"):
                use_available_cores()
    finally:
        torch.set_num_threads(before)
