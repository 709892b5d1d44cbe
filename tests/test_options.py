"""Options: the product set, defaults, coercion, errors that name the option, the value and the valid choices, and
the variant resolved once from a section and the train arguments."""

from __future__ import annotations

import dataclasses

import pytest

from yolo_gfl import YOLOGFL
from yolo_gfl.nn import build_detection_model
from yolo_gfl.options import ALL_OPTIONS, EXPERIMENTAL_OPTIONS, OPTIONS, GFLOptionError, format_options_help, \
    split_options, validate_options
from yolo_gfl.variant import Variant


def test_the_product_option_set_is_small_and_the_variant_holds_every_option():
    assert len(OPTIONS) <= 15
    assert set(OPTIONS) == {"head", "cls_loss", "vfl_alpha", "vfl_gamma", "qfl_beta", "cls_norm", "quality",
                            "assigner", "box_loss"}
    fields = {f.name: f.default for f in dataclasses.fields(Variant)}
    assert fields == {name: opt.default for name, opt in ALL_OPTIONS.items()}


def test_defaults_are_stock():
    assert Variant.resolve(None).is_stock and Variant.resolve({"cls_loss": "bce"}).is_stock
    assert not Variant.resolve({"cls_loss": "qfl"}).is_stock and not Variant.resolve({"head": "vfnet"}).is_stock
    assert not Variant.resolve({"quality": True}).is_stock
    assert validate_options({})["cls_loss"] == "bce"


def test_variant_is_frozen_and_its_section_rebuilds_it():
    v = Variant.resolve({"cls_loss": "qfl", "cls_norm": "sum"}, {"qfl_beta": "1.5"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.cls_loss = "vfl"
    assert v.qfl_beta == 1.5 and Variant.resolve(v.as_section()) == v
    assert set(v.as_section()) == set(ALL_OPTIONS)


def test_overrides_win_over_the_section_and_combinations_are_checked_on_the_merged_set():
    assert Variant.resolve({"cls_loss": "vfl", "cls_norm": "sum"}, {"cls_loss": "qfl"}).cls_loss == "qfl"
    with pytest.raises(GFLOptionError, match="head='vfnet' and quality=True"):
        Variant.resolve({"quality": True}, {"head": "vfnet"})


def test_coercion_from_cli_strings():
    o = validate_options({"quality": "True", "cls_loss": "VFL", "vfl_alpha": "0.5"})
    assert o["quality"] is True and o["cls_loss"] == "vfl" and o["vfl_alpha"] == 0.5


@pytest.mark.parametrize(
    "options,words",
    [
        ({"cls_loss": "focal"}, ["cls_loss", "'focal'", "bce | vfl | qfl"]),
        ({"quality": "maybe"}, ["quality", "True | False"]),
        ({"vfl_alpha": 1.5}, ["vfl_alpha", "1.5", "[0.0, 1.0]"]),
        ({"qfl_beta": float("nan")}, ["qfl_beta"]),
        ({"clsloss": "vfl"}, ["unknown", "clsloss", "cls_loss", "quality"]),
        ({"dgqp": True}, ["unknown", "dgqp", "quality"]),  # 0.2.0's names are read from checkpoints, not arguments
        ({"head": "dcn"}, ["head", "'dcn'", "detect | vfnet"]),
        ({"head": "vfnet", "quality": True}, ["head='vfnet'", "quality=True", "cannot be combined"]),
        ({"cls_loss": "vfl", "qfl_beta": 1.0}, ["qfl_beta=1.0", "cls_loss=qfl", "cls_loss='vfl'"]),
        ({"cls_loss": "qfl", "vfl_gamma": 1.0}, ["vfl_gamma=1.0", "cls_loss=vfl"]),
    ],
)
def test_errors_name_option_value_and_choices(options, words):
    with pytest.raises(GFLOptionError) as e:
        validate_options(options)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value)


def test_split_options():
    ours, theirs = split_options({"cls_loss": "vfl", "epochs": 3, "quality": True, "cls_target_gain": 1.25})
    assert ours == {"cls_loss": "vfl", "quality": True, "cls_target_gain": 1.25} and theirs == {"epochs": 3}


def test_help_lists_the_product_options_first_and_the_experimental_ones_apart():
    text = format_options_help()
    head, _, experimental = text.partition("Experimental options")
    assert experimental, text
    assert all(f"  {n} " in head for n in OPTIONS) and not any(f"  {n} " in head for n in EXPERIMENTAL_OPTIONS)
    assert all(f"  {n} " in experimental for n in EXPERIMENTAL_OPTIONS)
    assert "±" not in text


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


def test_the_training_log_names_the_variant():
    assert Variant.resolve({"cls_loss": "qfl"}).describe() == "head=detect cls_loss=qfl quality=False assigner=tal " \
                                                              "box_loss=ciou"
    tuned = Variant.resolve({"cls_loss": "qfl", "qfl_beta": 1.0, "quality": True, "quality_lr_gain": 10})
    assert tuned.describe() == ("head=detect cls_loss=qfl qfl_beta=1.0 quality=True assigner=tal box_loss=ciou "
                                "experimental: quality_lr_gain=10.0")


def test_shipped_configs_resolve_to_their_papers_variants():
    expected = {
        "vfl": Variant(cls_loss="vfl", cls_norm="sum"),
        "qfl": Variant(cls_loss="qfl", cls_norm="sum"),
        "gfl": Variant(cls_loss="bce", quality=True),
        "vfnet": Variant(head="vfnet", cls_loss="vfl", box_loss="giou", assigner="atss"),
    }
    from yolo_gfl.configs import load_model_cfg

    for family in ("yolov8n", "yolo11n"):
        for name, variant in expected.items():
            assert Variant.resolve(load_model_cfg(f"{family}-{name}.yaml")["gfl"]) == variant, (family, name)


@pytest.mark.parametrize("name, scale", [("yolov8n.yaml", "n"), ("yolov8n-gfl.yaml", "n"), ("yolo11s.yaml", "s")])
def test_a_folder_named_like_a_config_does_not_shadow_it(tmp_path, name, scale):
    """A run folder named after its model (``name=yolov8n.yaml``) sits in the working directory; the bare config name
    must still read the packaged YAML, not fail on the folder."""
    from yolo_gfl.configs import load_model_cfg

    (tmp_path / name).mkdir()  # conftest runs each test in tmp_path
    cfg = load_model_cfg(name)
    assert cfg["scale"] == scale
    assert cfg["backbone"] and cfg["head"]
