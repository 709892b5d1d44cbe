"""Options: defaults, coercion, and errors that name the option, the value and the valid choices."""

from __future__ import annotations

import pytest

from yolo_gfl import YOLOGFL
from yolo_gfl.nn import build_detection_model
from yolo_gfl.options import OPTIONS, GFLOptionError, is_stock, split_options, validate_options


def test_defaults_are_stock():
    assert is_stock(None) and is_stock({"cls_loss": "bce"}) and not is_stock({"cls_loss": "qfl"})
    assert validate_options({})["cls_loss"] == "bce"


def test_coercion_from_cli_strings():
    o = validate_options({"dgqp": "True", "cls_loss": "VFL", "vfl_alpha": "0.5", "dgqp_topk": 3.0})
    assert o["dgqp"] is True and o["cls_loss"] == "vfl" and o["vfl_alpha"] == 0.5 and o["dgqp_topk"] == 3


@pytest.mark.parametrize(
    "options,words",
    [
        ({"cls_loss": "focal"}, ["cls_loss", "'focal'", "bce | vfl | qfl"]),
        ({"dgqp": "maybe"}, ["dgqp", "True | False"]),
        ({"vfl_alpha": 1.5}, ["vfl_alpha", "1.5", "[0.0, 1.0]"]),
        ({"qfl_beta": float("nan")}, ["qfl_beta"]),
        ({"dgqp_topk": 2.5}, ["dgqp_topk", "int"]),
        ({"dgqp_topk": True}, ["dgqp_topk"]),
        ({"clsloss": "vfl"}, ["unknown", "clsloss", "cls_loss", "dgqp"]),
        ({"head": "dcn"}, ["head", "'dcn'", "detect | vfnet"]),
        ({"head": "vfnet", "dgqp": True}, ["head='vfnet'", "dgqp=True", "cannot be combined"]),
        ({"vfnet_offset_grad": -0.1}, ["vfnet_offset_grad", "[0.0, 1.0]"]),
        ({"vfnet_refine_weight": "x"}, ["vfnet_refine_weight", "float"]),
    ],
)
def test_errors_name_option_value_and_choices(options, words):
    with pytest.raises(GFLOptionError) as e:
        validate_options(options)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_head_defaults_keep_older_sections_valid():
    """A gfl: section saved before the head option existed still means Ultralytics' Detect head."""
    assert validate_options({"cls_loss": "qfl", "dgqp": True})["head"] == "detect"
    assert is_stock({"head": "detect"}) and not is_stock({"head": "vfnet"})


def test_split_options():
    ours, theirs = split_options({"cls_loss": "vfl", "epochs": 3, "dgqp": True})
    assert ours == {"cls_loss": "vfl", "dgqp": True} and theirs == {"epochs": 3}
    assert set(OPTIONS) >= {"cls_loss", "dgqp", "vfl_alpha", "vfl_gamma", "qfl_beta"}


def test_bad_yaml_section_fails_before_building():
    from yolo_gfl.configs import load_model_cfg

    cfg = load_model_cfg("yolov8n-gfl.yaml")
    cfg["gfl"]["cls_loss"] = "nope"
    with pytest.raises(GFLOptionError, match="cls_loss"):
        build_detection_model(cfg, verbose=False)


def test_bad_train_option_fails_before_any_run_folder(tmp_path):
    with pytest.raises(GFLOptionError, match="cls_loss"):
        YOLOGFL("yolov8n.yaml").train(data="coco8.yaml", cls_loss="bogus", project=str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_the_training_log_names_every_option_off_its_default():
    from yolo_gfl.nn.model import describe_options

    plain = describe_options(validate_options({"cls_loss": "qfl"}))
    assert plain == "head=detect cls_loss=qfl dgqp=False assigner=tal box_loss=ciou"
    tuned = describe_options(validate_options({"tal_alpha": 0.0, "cls_target": "tal", "cls_loss": "qfl"}))
    assert tuned == plain + " tal_alpha=0.0 cls_target=tal"  # in OPTIONS order
