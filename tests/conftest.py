"""Shared test set-up: offline Ultralytics, the real coco128 images beside the checkout, small trained models."""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # nothing may download: no weights, fonts or datasets at run time
os.environ.setdefault("YOLO_VERBOSE", "False")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw the same examples every run, so CI is reproducible; HYPOTHESIS_PROFILE=explore draws new ones
# (worth a run after changing a loss, an assigner or the options).
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
COCO128_YAML = SHARED / "datasets" / "coco128" / "coco128.yaml"
YOLOV8N_PT = SHARED / "weights" / "yolov8n.pt"

# Tiny but real training: a quarter of coco128's train images at 96 px, one epoch, CPU.
TINY_TRAIN = dict(epochs=1, imgsz=96, batch=8, workers=0, device="cpu", plots=False, fraction=0.25, seed=0)


@pytest.fixture(autouse=True)
def own_working_folder(tmp_path, monkeypatch):
    """Every test starts in its own empty folder, so none depends on the folder pytest was started from (one holding
    the quickstart's runs/, say) and whatever a test writes to a relative path (./datasets of data=synthetic, a
    default run folder) lands in its tmp_path. Ultralytics puts in-process runs without project= under
    ``ROOT.parent / "tests/tmp/runs"`` while pytest runs (``ultralytics.cfg.get_save_dir``), which is inside the
    installed packages; pointing that ROOT into tmp_path keeps those runs here too. Session fixtures set up before
    this one pass project= themselves."""
    import ultralytics.cfg

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ultralytics.cfg, "ROOT", tmp_path / "ultralytics")


@pytest.fixture(scope="session")
def coco128_yaml() -> str:
    """Path of the real coco128 data YAML; tests that need it skip, with the reason, where it is absent."""
    if not COCO128_YAML.exists():
        pytest.skip(f"real images needed: {COCO128_YAML} is absent (it sits beside the checkout in ../shared)")
    return str(COCO128_YAML)


@pytest.fixture(scope="session")
def val_images(coco128_yaml) -> list[str]:
    """A few real val2017 images."""
    return sorted(str(p) for p in (COCO128_YAML.parent / "images" / "val2017").glob("*.jpg"))[:4]


@pytest.fixture(scope="session")
def trained(tmp_path_factory, coco128_yaml):
    """Train each variant once (one tiny epoch through the Ultralytics trainer) and return {variant: run folder}."""
    from yolo_gfl import YOLOGFL

    project = tmp_path_factory.mktemp("runs")
    runs = {}

    def train(variant: str) -> Path:
        if variant not in runs:
            model = YOLOGFL(f"yolov8n-{variant}.yaml" if variant != "stock" else "yolov8n.yaml")
            model.train(data=coco128_yaml, project=str(project), name=variant, exist_ok=True, **TINY_TRAIN)
            runs[variant] = project / variant
        return runs[variant]

    return train


@pytest.fixture(scope="session")
def stock_pt() -> str:
    """Path of Ultralytics' COCO-trained yolov8n.pt; tests that need it skip, with the reason, where it is absent."""
    if not YOLOV8N_PT.exists():
        pytest.skip(f"stock checkpoint needed: {YOLOV8N_PT} is absent (it sits beside the checkout in ../shared)")
    return str(YOLOV8N_PT)


@pytest.fixture(scope="session")
def finetuned(tmp_path_factory, coco128_yaml, stock_pt):
    """yolov8n-gfl with stock COCO weights transferred, fine-tuned one tiny epoch: a model with a real AP."""
    from yolo_gfl import YOLOGFL

    project = tmp_path_factory.mktemp("finetuned")
    model = YOLOGFL("yolov8n-gfl.yaml")
    model.train(data=coco128_yaml, pretrained=stock_pt, project=str(project), name="gfl",
                **{**TINY_TRAIN, "imgsz": 160, "lr0": 0.001, "warmup_epochs": 0})
    return project / "gfl" / "weights" / "best.pt"


@pytest.fixture
def isolated_env(tmp_path) -> dict[str, str]:
    """Environment for a `yolo-gfl` subprocess that writes nowhere but tmp_path: Ultralytics settings of its own whose
    runs_dir, datasets_dir and weights_dir are tmp_path/runs, /datasets and /weights (a user's defaults put them in
    the folder where Ultralytics first ran), offline, and without pytest's marker variable, which would make
    Ultralytics put default runs inside the installed packages."""
    import json
    import shutil

    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    config = tmp_path / "config"
    (config / "Ultralytics").mkdir(parents=True, exist_ok=True)
    settings = {**SETTINGS, "runs_dir": str(tmp_path / "runs"), "datasets_dir": str(tmp_path / "datasets"),
                "weights_dir": str(tmp_path / "weights"), "sync": False}
    (config / "Ultralytics" / "settings.json").write_text(json.dumps(settings, indent=2))
    for font in USER_CONFIG_DIR.glob("*.ttf"):  # plots need a font, which Ultralytics would otherwise download
        shutil.copyfile(font, config / "Ultralytics" / font.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return {**env, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(config), "YOLO_VERBOSE": "True"}


# ------------------------------------------------------------------- helpers shared by several test modules
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from ultralytics.cfg import get_cfg  # noqa: E402
from ultralytics.data.augment import LetterBox  # noqa: E402

from yolo_gfl.configs import load_model_cfg  # noqa: E402
from yolo_gfl.nn import GFLDetectionModel  # noqa: E402

ATOL = 1e-3  # absolute, on boxes in pixels (imgsz 96) and scores in [0, 1]; float32 kernels differ in summation order


def letterboxed(paths, size):
    imgs = [LetterBox((size, size), auto=False)(image=cv2.imread(p))[..., ::-1] for p in paths]
    return np.ascontiguousarray(np.stack(imgs).transpose(0, 3, 1, 2), dtype=np.float32) / 255

def xywh_preds(boxes_xyxy, scores):
    """(1, 4 + nc, N) model output from xyxy boxes (N, 4) and class scores (N, nc)."""
    b = torch.tensor(boxes_xyxy, dtype=torch.float32)
    xywh = torch.cat(((b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]), 1)
    return torch.cat((xywh, torch.tensor(scores, dtype=torch.float32)), 1).T.unsqueeze(0)

def make_model(**options):
    torch.manual_seed(0)
    cfg = load_model_cfg("yolov8n.yaml")
    cfg["gfl"] = options
    cfg["nc"] = 3
    model = GFLDetectionModel(cfg, verbose=False)
    model.args = get_cfg()  # Ultralytics' default gains box=7.5, cls=0.5, dfl=1.5
    return model

def make_batch(n_images=2, with_boxes=True):
    batch = {"img": torch.rand(n_images, 3, 64, 64)}
    if with_boxes:  # normalised xywh; image 0 has two objects, image 1 one
        batch["batch_idx"] = torch.tensor([0.0, 0.0, 1.0])
        batch["cls"] = torch.tensor([[0.0], [2.0], [1.0]])
        batch["bboxes"] = torch.tensor([[0.3, 0.3, 0.4, 0.5], [0.7, 0.6, 0.3, 0.3], [0.5, 0.5, 0.8, 0.6]])
    else:
        batch["batch_idx"], batch["cls"], batch["bboxes"] = torch.zeros(0), torch.zeros(0, 1), torch.zeros(0, 4)
    return batch

class FixedAssigner:
    """Stands in for TAL with a known assignment, so the loss arithmetic can be checked by hand."""

    def __init__(self, fg_index, labels, boxes, scores=None):
        self.fg_index, self.labels, self.boxes, self.scores = fg_index, labels, boxes, scores

    def __call__(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        b, a, nc = pd_scores.shape
        fg = torch.zeros(b, a, dtype=torch.bool)
        fg[0, self.fg_index] = True
        labels = torch.zeros(b, a, dtype=torch.long)
        labels[0, self.fg_index] = self.labels
        boxes = torch.zeros(b, a, 4)
        boxes[0, self.fg_index] = self.boxes
        scores = torch.zeros(b, a, nc)
        if self.scores is not None:  # a TAL-like soft target at each positive's class
            scores[0, self.fg_index, self.labels] = self.scores
        return labels, boxes, scores, fg, torch.zeros(b, a, dtype=torch.long)

def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid

def plant(folder, name, age_s):
    path = folder / name
    path.write_bytes(b"half a checkpoint")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def load_module(name: str, path: Path):
    """A Python file that is not part of a package (docs/build.py, a fixture script), loaded as module ``name``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
