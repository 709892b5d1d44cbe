"""Every yolo_gfl option is checked up front, in validate_options, YOLOGFL.train and the CLI: a bad value fails before
any run folder exists, with a message naming the option, the value and the allowed range. Generated from ALL_OPTIONS
(product and experimental), so options added later are covered too."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolo_gfl import YOLOGFL
from yolo_gfl.cli import main
from yolo_gfl.nn import build_detection_model
from yolo_gfl.options import ALL_OPTIONS as OPTIONS
from yolo_gfl.options import GFLOptionError, validate_options


def bad_values(name):
    opt = OPTIONS[name]
    if opt.choices:
        return ["bogus", 3]
    if opt.kind is bool:
        return ["maybe", 2]
    values = [opt.high + 1, opt.low - 1, float("nan"), float("inf"), float("-inf"), "abc", True]
    if opt.kind is int:
        values.append(opt.low + 0.5)
    return values


CASES = [(name, value) for name in OPTIONS for value in bad_values(name)]


@pytest.mark.parametrize("name,value", CASES, ids=[f"{n}={v}" for n, v in CASES])
def test_validate_options_names_option_value_and_range(name, value):
    with pytest.raises(GFLOptionError) as e:
        validate_options({name: value})
    message = str(e.value)
    assert name in message and repr(value) in message and OPTIONS[name].allowed() in message, message


@pytest.mark.parametrize("name", list(OPTIONS))
def test_train_and_cli_reject_before_any_run_folder(name, tmp_path, capsys):
    value = bad_values(name)[0]
    with pytest.raises(GFLOptionError, match=name):
        YOLOGFL("yolov8n.yaml").train(data="coco8.yaml", project=str(tmp_path), **{name: value})
    code = main(["train", "model=yolov8n-gfl.yaml", "data=coco8.yaml", f"project={tmp_path}", f"{name}={value}"])
    err = capsys.readouterr().err
    assert code == 2 and name in err and OPTIONS[name].allowed() in err, err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", [n for n, o in OPTIONS.items() if o.low is not None])
def test_range_ends_are_accepted_and_build(name):
    """Both ends of every numeric range are valid values, and a model builds with them (nothing fails later)."""
    opt = OPTIONS[name]
    for value in (opt.low, opt.high):
        options = {name: value, "cls_loss": {"vfl_alpha": "vfl", "vfl_gamma": "vfl", "qfl_beta": "qfl"}.get(name, "bce")}
        if name.startswith("quality_"):
            options["quality"] = True
        assert validate_options(options)[name] == value
        cfg = {"base": "yolov8.yaml", "scale": "n", "yaml_file": "yolov8n-gfl.yaml", "gfl": options}
        build_detection_model(cfg, nc=2, verbose=False)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(OPTIONS)),
       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.text(max_size=8),
                 st.booleans(), st.none()))
def test_any_value_is_either_valid_in_range_or_a_named_error(name, value):
    opt = OPTIONS[name]
    try:
        out = validate_options({name: value})[name]
    except GFLOptionError as e:
        assert name in str(e)
        return
    if opt.choices:
        assert out in opt.choices
    elif opt.kind is bool:
        assert isinstance(out, bool)
    else:
        assert isinstance(out, opt.kind) and not isinstance(out, bool)
        assert math.isfinite(out) and opt.low <= out <= opt.high
