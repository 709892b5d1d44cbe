"""yolo_gfl 0.2.0 compatibility: its checkpoints load and predict the same, its option sections resolve to the same
variants, every shipped config and kept probe computes the same loss, and the benchmark's recipe digests (which key
the committed records' cells) are unchanged. The reference figures were made by 0.2.0's own code
(tests/data/v020/make_fixtures.py, run once at commit a3e6ecc)."""

from __future__ import annotations

import json

import pytest
import torch

from yolo_gfl import YOLOGFL
from yolo_gfl.configs import load_model_cfg
from yolo_gfl.options import GFLOptionError
from yolo_gfl.variant import Variant

from .conftest import ROOT, SHARED, load_module

DATA = ROOT / "tests" / "data" / "v020"
REFERENCE = json.loads((DATA / "reference.json").read_text())["configs"]
WITH_LOSS = [name for name, ref in REFERENCE.items() if "loss_items" in ref]


def fixtures():
    """make_fixtures.py's seeded predictions and fixed batch (plain tensor code, the same in any version)."""
    return load_module("v020_fixtures", DATA / "make_fixtures.py")


def config(name: str) -> str:
    return str(ROOT / name) if name.startswith("benchmarks/") else name


@pytest.fixture(scope="module")
def predictions():
    return torch.load(DATA / "predictions.pt", weights_only=True)


@pytest.mark.parametrize("variant", ["gfl", "vfl", "vfnet"])
def test_a_0_2_0_checkpoint_loads_and_predicts_the_same(variant, predictions):
    images = [SHARED / "datasets" / "coco128" / "images" / "val2017" / n for n in predictions["images"]]
    if not all(p.exists() for p in images):
        pytest.skip(f"real images needed: {images[0].parent} is absent")
    ref = predictions["predictions"][variant]
    model = YOLOGFL(str(DATA / f"yolov8n-{variant}.pt"))
    expected = {"gfl": Variant(cls_loss="bce", quality=True), "vfl": Variant(cls_loss="vfl", cls_norm="sum"),
                "vfnet": Variant(head="vfnet", cls_loss="vfl", box_loss="giou", assigner="atss")}[variant]
    assert model.model.variant == expected and model.model.yaml["gfl"] == expected.as_section()
    head = model.model.model[-1]
    assert (head.quality_branch is not None) == (variant == "gfl") and head.dgqp is head.quality_branch
    results = model.predict([str(p) for p in images], imgsz=160, conf=predictions["conf"], device="cpu", verbose=False)
    assert sum(len(r.boxes) for r in results) > 0
    for r, boxes, conf, cls in zip(results, ref["boxes"], ref["conf"], ref["cls"]):
        torch.testing.assert_close(r.boxes.xyxy, boxes, rtol=0, atol=1e-4)
        torch.testing.assert_close(r.boxes.conf, conf, rtol=0, atol=1e-6)
        assert torch.equal(r.boxes.cls, cls)
    with torch.no_grad():
        raw = model.model.float().eval()(ref["input"])
    torch.testing.assert_close(raw[0] if isinstance(raw, (tuple, list)) else raw, ref["raw"], rtol=0, atol=1e-5)


def test_a_0_2_0_safe_checkpoint_loads_with_its_old_names(tmp_path):
    """A safe checkpoint written by 0.2.0 holds the branch's tensors as ``...dgqp.`` and the options by 0.2.0's
    names: it loads strictly into the renamed head and computes the same outputs."""
    from yolo_gfl.checkpoints import SAFE_FORMAT, load_safe

    model = YOLOGFL(str(DATA / "yolov8n-gfl.pt")).model.float().eval()
    state = {k.replace(".quality_branch.", ".dgqp."): v for k, v in model.state_dict().items()}
    assert any(".dgqp." in k for k in state)
    yaml = {**model.yaml, "gfl": REFERENCE["yolov8n-gfl.yaml"]["section"]}  # 0.2.0's full section
    path = tmp_path / "old.safe.pt"
    torch.save({"format": SAFE_FORMAT, "version": 1, "yaml": yaml, "names": model.names, "args": {},
                "stride": model.stride.tolist(), "state_dict": state}, path)
    loaded = load_safe(path)
    assert loaded.variant == model.variant
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("name", WITH_LOSS)
def test_0_2_0_sections_resolve_to_the_configs_variants(name):
    assert Variant.resolve(REFERENCE[name]["section"]) == Variant.resolve(load_model_cfg(config(name)).get("gfl"))


@pytest.mark.parametrize("name", WITH_LOSS)
def test_every_shipped_config_and_kept_probe_computes_0_2_0s_loss(name):
    """Per item, bit for bit, and the gradients reaching each head output, on a fixed batch with seeded outputs."""
    from ultralytics.cfg import get_cfg

    from yolo_gfl.nn import GFLDetectionModel

    fx = fixtures()
    cfg = load_model_cfg(config(name))
    cfg["nc"] = 3
    torch.manual_seed(0)
    model = GFLDetectionModel(cfg, verbose=False)
    model.args = get_cfg()
    preds = fx.seeded_preds(model, 3)
    total, items = model.init_criterion()(preds, fx.fixed_batch())
    total.sum().backward()
    assert {k: float(v) for k, v in items.items()} == REFERENCE[name]["loss_items"]
    assert {k: float(v.grad.norm()) for k, v in preds.items() if k != "feats"} == REFERENCE[name]["grad_norms"]


def test_recipe_digests_are_those_of_0_2_0_and_of_the_committed_records():
    from benchmarks.real_data import recipe_digest

    for name, ref in REFERENCE.items():
        assert recipe_digest(config(name)) == ref["recipe_digest"], name
    record = json.loads((ROOT / "benchmarks" / "results" / "real_data_shared_init.json").read_text())
    checked = set()
    for cell in record["cells"]:
        path = ROOT / "benchmarks" / "configs" / f"{cell['model']}.yaml"
        name = str(path) if path.is_file() else f"{cell['model']}.yaml"
        if cell.get("recipe") and (path.is_file() or not cell["model"].startswith("yolov8n-stock")):
            assert recipe_digest(name) == cell["recipe"], cell["model"]
            checked.add(cell["model"])
    assert checked == {"yolov8n", "yolov8n-gfl", "yolov8n-stock-tgain125", "yolov8n-stock-iouconv10-detach"}


@pytest.mark.parametrize("section,words", [
    ({"dgqp": True, "dgqp_hidden": 32}, ["dgqp_hidden", "removed", "0.2.0"]),
    ({"cls_loss": "vfl", "cls_target": "tal"}, ["cls_target=tal", "removed", "0.2.0"]),
    ({"cls_loss": "qfl", "box_weight": "score"}, ["box_weight=score", "removed"]),
    ({"dgqp": True}, ["cls_loss=bce", "box_weight=iou", "removed"]),  # 0.2.0 weighted its boxes by the IoU there
])
def test_removed_0_2_0_knobs_are_refused_by_name(section, words):
    with pytest.raises(GFLOptionError) as e:
        Variant.resolve(section)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value)


def test_0_2_0_knobs_at_their_defaults_are_dropped():
    old_gfl = {"dgqp": True, "cls_loss": "qfl", "qfl_beta": 0.0, "cls_target": "tal", "cls_norm": "sum",
               "box_weight": "target", "dgqp_hidden": 64, "vfnet_star_op": "deform_conv2d", "dgqp_lr_gain": 10}
    assert Variant.resolve(old_gfl) == Variant(cls_loss="bce", quality=True, quality_lr_gain=10.0)
