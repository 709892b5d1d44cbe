"""The ``yolo-gfl`` command's up-front checks of every path it will read: model, data, pretrained, source, resume.

Each check runs before anything is built or written, and a bad path raises :class:`PathCheckError` with one line that
names the argument as given, what is wrong and what was expected. Names that Ultralytics resolves itself stay valid:
an official checkpoint name (``yolov8n.pt``, downloaded on first use), a data set shipped with Ultralytics
(``coco128.yaml``, whose images it downloads), a model config from either package, ``data=synthetic...``. Where
Ultralytics would download and this machine is offline (``YOLO_OFFLINE=1`` or no network), the message says from where
and how to give a local copy instead, rather than letting the download fail deep inside a run.
"""

from __future__ import annotations

import inspect
import os
import re
import tarfile
import zipfile
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml
from ultralytics.data.utils import IMG_FORMATS, VID_FORMATS
from ultralytics.utils import DATASETS_DIR, ROOT, SETTINGS
from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES, GITHUB_ASSETS_REPO, GITHUB_ASSETS_STEMS

from .configs import model_cfg_names

__all__ = ["PathCheckError", "check_paths", "check_zoo_paths", "check_model", "check_data", "check_weights",
           "check_source"]

URL_PREFIXES = ("http://", "https://", "rtsp://", "rtmp://", "tcp://", "grpc://", "ul://", "gs://")
YAML_SUFFIXES = (".yaml", ".yml")
SCALES = "nslmx"
SYNTHETIC_EXAMPLE = "data=synthetic-n1000-v200-i160"


class PathCheckError(ValueError):
    """A path argument that cannot work; the message (one line) names it as given, the problem and the fix."""


def _online() -> bool:
    """Whether Ultralytics may download: its own start-up probe (which reads YOLO_OFFLINE), and YOLO_OFFLINE now."""
    from ultralytics.utils import ONLINE

    return ONLINE and os.environ.get("YOLO_OFFLINE", "").lower() not in {"1", "true", "yes"}


def _is_url(text: str) -> bool:
    return text.lower().startswith(URL_PREFIXES)


def _offline_url(key: str, given: str) -> None:
    if not _online():
        raise PathCheckError(f"{key}={given} is a URL, and this machine is offline (YOLO_OFFLINE=1 or no network): "
                             f"download it elsewhere and give its local path, {key}=path/to/file.")


def _read_start(path: Path, key: str, given: str, what: str) -> bytes:
    """The first bytes of the file ``path``, or PathCheckError if it is a folder or cannot be read."""
    if path.is_dir():
        raise PathCheckError(f"{key}={given} is a folder; expected {what}.")
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError as e:
        raise PathCheckError(f"{key}={given} cannot be read ({e.strerror or e}); expected {what} this user can read."
                             ) from None


def _runs_hint(given: str) -> str:
    """A relative ``runs/...`` path that exists under Ultralytics' runs_dir, which is where runs really go."""
    path = Path(given)
    if path.is_absolute() or not path.parts or path.parts[0] != "runs":
        return ""
    candidate = Path(SETTINGS["runs_dir"]).joinpath(*path.parts[1:])
    if candidate.exists():
        return f" Did you mean {candidate}? (runs are written under Ultralytics' runs_dir, {SETTINGS['runs_dir']})"
    return ""


def _release_url(name: str) -> str:
    """Where Ultralytics' attempt_download_asset fetches an official checkpoint from."""
    from ultralytics.utils.downloads import attempt_download_asset

    release = inspect.signature(attempt_download_asset).parameters["release"].default
    return f"https://github.com/{GITHUB_ASSETS_REPO}/releases/download/{release}/{name}"


def _looks_like_torch_file(head: bytes) -> bool:
    """torch.save writes a zip archive; files from torch < 1.6 start with a pickle's protocol byte."""
    return head.startswith(b"PK") or head[:1] == b"\x80"


def check_weights(key: str, given: Any, example: str = "path/to/best.pt") -> None:
    """A checkpoint argument (``model=x.pt``, ``pretrained=``, ``resume=``): an existing file torch can read, or an
    official Ultralytics name it downloads. A missing local file never reaches a download attempt."""
    text = str(given)
    if _is_url(text):
        return _offline_url(key, text)
    path = Path(text)
    if path.exists():
        head = _read_start(path, key, text, "a .pt checkpoint file")
        if not _looks_like_torch_file(head):
            raise PathCheckError(f"{key}={text} is not a PyTorch checkpoint (not a file torch.save wrote); expected a "
                                 f".pt file such as {example}.")
        return None
    from ultralytics.utils.checks import check_yolov5u_filename

    name = check_yolov5u_filename(text if path.suffix else f"{text}.pt")  # Ultralytics' own renames (yolov5n -> u)
    if len(path.parts) == 1 and (Path(SETTINGS["weights_dir"]) / name).is_file():
        return None  # Ultralytics looks in its weights_dir too
    if len(path.parts) == 1 and name in GITHUB_ASSETS_NAMES:
        if _online():
            return None  # an official checkpoint: Ultralytics downloads it on first use, as 'yolo' does
        raise PathCheckError(f"{key}={text} is not in this folder, and this machine is offline (YOLO_OFFLINE=1 or no "
                             f"network), so Ultralytics cannot download it from {_release_url(name)}: download it "
                             f"there and give its path, {key}=path/to/{name}.")
    raise PathCheckError(f"{key}={text} does not exist; expected the path of a .pt checkpoint, e.g. {key}={example}."
                         + _runs_hint(text))


def _scaled(name: str) -> list[str]:
    """'yolov8-gfl.yaml' -> the same name at every scale ('yolov8n-gfl.yaml', ...), as Ultralytics reads them."""
    match = re.match(r"^(yolo\D*\d+)([-.].*)$", name)
    return [f"{match.group(1)}{s}{match.group(2)}" for s in SCALES] if match else []


def _model_suggestions(name: str) -> str:
    """The shipped model configs closest to ``name``: yolo_gfl's first, then Ultralytics' own."""
    ours = [n for base in model_cfg_names() for n in (base, *_scaled(base))]
    theirs = [n for p in (ROOT / "cfg" / "models").rglob("*.yaml") for n in (p.name, *_scaled(p.name))]
    close = get_close_matches(name, ours, n=8, cutoff=0.75) or get_close_matches(name, ours + theirs, n=8)
    unique = {}  # one name per config: the same file at another scale is no second suggestion
    for candidate in close:
        unique.setdefault(re.sub(r"^(yolo\D*\d+)[nslmx]?", r"\1", candidate), candidate)
    return f" Did you mean {' or '.join(list(unique.values())[:2])}?" if unique else ""


def check_model(given: Any, key: str = "model") -> None:
    """``model=``: a model YAML (a file, or a config name yolo_gfl or Ultralytics ships, at any scale), a checkpoint,
    or an exported model (a file or folder that exists)."""
    text = str(given)
    if _is_url(text):
        return _offline_url(key, text)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return _check_model_yaml(text, key)
    if suffix == ".pt" or (not suffix and not path.exists() and path.stem in GITHUB_ASSETS_STEMS):
        return check_weights(key, text)
    if not path.exists():
        raise PathCheckError(f"{key}={text} does not exist; expected a model YAML (e.g. {key}=yolov8n-gfl.yaml), a .pt "
                             "checkpoint or an exported model (file or folder)." + _runs_hint(text))
    from ultralytics.engine.exporter import export_formats

    suffixes = [s for s in (*export_formats()["Suffix"], ".mlmodel") if s not in ("-", "")]
    if not any(s in path.name.lower() for s in suffixes):  # how Ultralytics' AutoBackend tells the format
        raise PathCheckError(f"{key}={text} is neither a .pt checkpoint, a model YAML nor an exported model Ultralytics "
                             f"recognises by its name ({', '.join(suffixes[:6])}, ...).")
    return None


def _check_model_yaml(text: str, key: str) -> None:
    from .configs import load_model_cfg

    path = Path(text)
    expected = "a model config YAML (backbone: and head:, or yolo_gfl's base: and gfl:)"
    if path.exists():
        _read_start(path, key, text, expected)
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
        except yaml.YAMLError as e:
            raise PathCheckError(f"{key}={text} is not valid YAML ({_yaml_problem(e)}); expected {expected}.") from None
        if not isinstance(content, dict) or not ({"backbone", "head"} <= set(content) or "base" in content):
            raise PathCheckError(f"{key}={text} is not a model config (it has no backbone:/head: or base:); "
                                 f"expected {expected}." + (" It looks like a data YAML: give it as data=."
                                                            if isinstance(content, dict) and "names" in content else ""))
    try:
        load_model_cfg(text)  # what the build reads: yolo_gfl's configs first, then Ultralytics' (any scale)
    except Exception as e:  # noqa: BLE001 -- Ultralytics raises several kinds for a name or file it cannot use
        if path.exists():
            raise PathCheckError(f"{key}={text} cannot be used as a model config: {_first_line(e)}.") from None
        if len(path.parts) > 1:
            raise PathCheckError(f"{key}={text} does not exist; expected a model config YAML file, or the name of one "
                                 "yolo_gfl or Ultralytics ships (e.g. yolov8n-gfl.yaml).") from None
        names = ", ".join(model_cfg_names())
        raise PathCheckError(f"{key}={text} is neither a file here nor a config yolo_gfl or Ultralytics ships."
                             f"{_model_suggestions(text)} yolo_gfl's configs, at any scale n/s/m/l/x: {names}; or "
                             "Ultralytics' own (yolov8n.yaml, yolo11n.yaml).") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(".")


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or _first_line(e)
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def _synthetic(text: str) -> bool:
    """Whether ``data`` names the embedded synthetic set (checked here: its options, before anything is generated)."""
    from .data.synthetic import _NAME_KEYS, _NAME_PATTERN, _validated_options

    if not text.startswith("synthetic") or Path(text).exists():
        return False
    match = _NAME_PATTERN.match(text)
    if not match:
        raise PathCheckError(f"data={text} is not a file, nor a synthetic data set name: those read "
                             "synthetic[-s<seed>][-n<train images>][-v<val images>][-i<image size>], e.g. "
                             f"{SYNTHETIC_EXAMPLE}.")
    options = {"n_train": 800, "n_val": 200, "imgsz": 320, "seed": 0}  # synthetic_dataset's defaults
    options.update({_NAME_KEYS[part[0]]: int(part[1:]) for part in match.group(1).split("-") if part})
    try:
        _validated_options(**options)
    except (TypeError, ValueError) as e:
        raise PathCheckError(f"data={text}: {e} (letters: s seed, n train images, v val images, i image size).") from None
    return True


def _data_file(text: str) -> Path | None:
    """The data YAML that ``data`` names, found as Ultralytics finds it; None for an archive, which Ultralytics
    unpacks itself."""
    from ultralytics.utils.checks import check_file

    expected = f"a data YAML (path/to/data.yaml), a data set name Ultralytics ships (coco8.yaml) or {SYNTHETIC_EXAMPLE}"
    path = Path(text)
    if not path.exists() and len(path.parts) == 1:
        names = [text] if path.suffix.lower() in YAML_SUFFIXES else [f"{text}.yaml", f"{text}.yml"]
        for name in names:  # Ultralytics' data sets ship as YAML inside its package ('coco8' means coco8.yaml)
            found = check_file(name, download=False, hard=False)
            if found:
                return Path(found)
    if not path.exists():
        shipped = sorted(p.name for p in (ROOT / "cfg" / "datasets").glob("*.yaml"))
        close = get_close_matches(text, shipped, n=2, cutoff=0.88) if len(path.parts) == 1 else []
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise PathCheckError(f"data={text} does not exist; expected {expected}.{hint}{_runs_hint(text)}")
    if path.is_dir():
        yamls = sorted(path.glob("*.yaml")) or sorted(path.glob("*.yml"))
        if len(yamls) > 1:
            yamls = [p for p in yamls if p.stem == path.name]
        if len(yamls) != 1:  # Ultralytics takes a folder holding one data YAML (find_dataset_yaml)
            found = "no YAML file" if not yamls else "several YAML files"
            raise PathCheckError(f"data={text} is a folder with {found} at its top; expected {expected}, e.g. "
                                 f"data={Path(text) / 'data.yaml'}.")
        return yamls[0]
    _read_start(path, "data", text, "a data YAML")
    if zipfile.is_zipfile(path) or tarfile.is_tarfile(path):
        return None  # an archive of a data set: Ultralytics unpacks it into its datasets_dir
    if path.suffix.lower() not in YAML_SUFFIXES:
        raise PathCheckError(f"data={text} is not a .yaml file; expected {expected}.")
    return path


def _offline_download(text: str, content: dict[str, Any], root: Path, missing: Path) -> None:
    if _online():
        return None  # Ultralytics downloads the images as its YAML says, as 'yolo' does
    source = str(content["download"]).strip()
    where = source if source.lower().startswith("http") else "the download script in its YAML"
    raise PathCheckError(f"data={text}: its images ({missing}) are not on this machine, and it is offline "
                         f"(YOLO_OFFLINE=1 or no network), so Ultralytics cannot download them from {where} into "
                         f"{root}: fetch them elsewhere and give data=path/to/your/data.yaml, or use {SYNTHETIC_EXAMPLE}.")


def check_data(given: Any, splits: tuple[str, ...] = ("train", "val")) -> None:
    """``data=``: the synthetic set's name, or a data YAML Ultralytics can read whose ``splits`` image folders (or
    lists) exist, or that Ultralytics would download where it is online."""
    text = str(given)
    if _synthetic(text):
        return None
    if _is_url(text):
        return _offline_url("data", text)
    file = _data_file(text)
    if file is None:
        return None
    shown = text if file == Path(text) else f"{text} ({file})"
    _read_start(file, "data", shown, "a data YAML")
    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as e:
        raise PathCheckError(f"data={shown} is not valid YAML ({_yaml_problem(e)}).") from None
    layout = "path: (the data set's folder), train: and val: (image folders or lists), names: (the classes)"
    if not content:
        raise PathCheckError(f"data={shown} is empty; a data YAML holds {layout}.")
    if not isinstance(content, dict):
        raise PathCheckError(f"data={shown} is not a YAML mapping; a data YAML holds {layout}.")
    content = dict(content)
    if "val" not in content and "validation" in content:
        content["val"] = content["validation"]  # Ultralytics renames it, with a warning
    missing_keys = [k for k in ("train", "val") if not content.get(k)]
    if content.get("names") is None and "nc" not in content:
        missing_keys.append("names")
    if missing_keys:
        raise PathCheckError(f"data={shown} has no {', '.join(k + ':' for k in missing_keys)}; a data YAML holds "
                             f"{layout}.")
    # Ultralytics' check_det_dataset: path: (else the YAML's folder), relative to datasets_dir when not found here
    root = Path(content.get("path") or file.parent)
    if not root.exists() and not root.is_absolute():
        root = (DATASETS_DIR / root).resolve()
    for split in splits:
        if not content.get(split):
            raise PathCheckError(f"data={shown} has no {split}: entry; name its images there, or choose a split it "
                                 "has (split=val).")
        entries = content[split] if isinstance(content[split], list) else [content[split]]
        for entry in entries:
            image_path = (root / str(entry)).resolve()
            if not image_path.exists() and str(entry).startswith("../"):
                image_path = (root / str(entry)[3:]).resolve()
            if image_path.is_dir() and not _has_image(image_path):
                raise PathCheckError(f"data={shown}: its {split}: folder {image_path} holds no images "
                                     f"({', '.join(sorted(IMG_FORMATS))}).")
            if image_path.exists():
                continue
            if content.get("download"):
                return _offline_download(text, content, root, image_path)
            raise PathCheckError(f"data={shown}: its {split}: images {image_path} do not exist (read as {entry!s} "
                                 f"under path: {root}); fix the YAML's path: or {split}: entry.")
    return None


def _has_image(folder: Path) -> bool:
    """Whether ``folder`` or a folder below holds an image (Ultralytics reads the split folders recursively); stops
    at the first one, so a large data set costs one file."""
    return any(p.suffix[1:].lower() in IMG_FORMATS for p in folder.rglob("*.*"))


def check_source(given: Any) -> None:
    """``source=`` of predict: an image, video, folder of them, glob, .txt/.csv list, URL, stream or webcam index."""
    text = str(given).strip()
    formats = f"images ({', '.join(sorted(IMG_FORMATS))}) or videos ({', '.join(sorted(VID_FORMATS))})"
    if text.isnumeric() or text.lower() == "screen" or text.lower().startswith("screen "):
        return None  # a webcam index, a screenshot: Ultralytics' own sources
    if _is_url(text):
        if text.lower().startswith(("http://", "https://")) and Path(text.split("?")[0]).suffix[1:].lower() in (
                IMG_FORMATS | VID_FORMATS):
            return _offline_url("source", text)  # Ultralytics downloads a media URL first
        return None  # a stream: read live
    if "*" in text:
        import glob

        if not any(Path(f).suffix[1:].lower() in IMG_FORMATS | VID_FORMATS for f in glob.glob(text, recursive=True)):
            raise PathCheckError(f"source={text} matches no {formats}.")
        return None
    path = Path(text)
    if not path.exists():
        raise PathCheckError(f"source={text} does not exist; expected an image, a video, a folder of them, a glob "
                             "('images/*.jpg'), a .txt list, a URL or a webcam index (source=0).")
    if path.is_dir():
        if not any(p.suffix[1:].lower() in IMG_FORMATS | VID_FORMATS for p in path.glob("*.*")):
            raise PathCheckError(f"source={text} is a folder without {formats} at its top.")
        return None
    _read_start(path, "source", text, "an image or video")
    suffix = path.suffix[1:].lower()
    if suffix not in IMG_FORMATS | VID_FORMATS | {"txt", "csv", "streams"}:
        raise PathCheckError(f"source={text} is not an image or a video (.{suffix}); expected {formats}, or a .txt list.")
    return None


def _checkpoint_data(model: str) -> Any:
    """The data set a checkpoint was trained on (``train_args['data']``), which val uses when none is given."""
    from ultralytics.utils.patches import torch_load

    try:
        ckpt = torch_load(model, map_location="cpu")
    except Exception as e:  # noqa: BLE001 -- a file torch cannot read, whatever the reason
        raise PathCheckError(f"model={model} could not be loaded as a checkpoint: {_first_line(e)}.") from None
    return (ckpt.get("train_args") or {}).get("data") if isinstance(ckpt, dict) else None


def _check_run_folder(mode: str, args: dict[str, Any]) -> None:
    """The folder the run will write (Ultralytics' get_save_dir, without numbering it) must not lie under a file."""
    if mode not in ("train", "val", "predict") or not (args.get("project") or args.get("name")):
        return None
    from types import SimpleNamespace

    from ultralytics.cfg import get_save_dir

    spec = SimpleNamespace(project=args.get("project"), name=args.get("name"), task="detect", mode=mode,
                           exist_ok=True, save_dir=None)
    folder = get_save_dir(spec)
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        given = " ".join(f"{k}={args[k]}" for k in ("project", "name") if args.get(k))
        raise PathCheckError(f"{given}: the run folder {folder} cannot be made, {blocking} is a file; give another "
                             "project= or name=.")
    return None


def check_paths(mode: str, args: dict[str, Any], default_model: str) -> None:
    """Check every path-like argument that ``mode`` reads; raise PathCheckError (one line) for the first bad one."""
    model = args.get("model", default_model if mode == "train" else None)
    resume = args.get("resume")
    if mode == "train" and isinstance(resume, (str, os.PathLike)):
        check_weights("resume", resume, example="path/to/weights/last.pt")
    elif model is not None:
        check_model(model)
    if mode == "train" and isinstance(args.get("pretrained"), (str, os.PathLike)):
        check_weights("pretrained", args["pretrained"], example="path/to/yolov8n.pt")
    _check_run_folder(mode, args)
    data = args.get("data")
    if mode == "train":
        splits = ("train", "val") if args.get("val", True) else ("train",)
        if data is None and not resume:
            try:  # Ultralytics' Model.train then takes its default data set, ultralytics.cfg.TASK2DATA['detect']
                check_data("coco8.yaml", splits)
            except PathCheckError as e:
                raise PathCheckError(f"no data= given, so Ultralytics would train on coco8.yaml, and {e} Or give "
                                     f"data=path/to/data.yaml, or {SYNTHETIC_EXAMPLE}.") from None
        elif data is not None:  # a resumed run reads its checkpoint's data set unless one is given
            check_data(data, splits)
    elif mode in ("val", "analyze"):
        split = str(args.get("split") or "val")
        if data is None and str(model).endswith(".pt") and Path(str(model)).is_file():
            data = _checkpoint_data(str(model))
            if data is not None:
                try:
                    check_data(data, (split,))
                except PathCheckError as e:
                    raise PathCheckError(f"no data= given, so {mode} reads the data set {model} was trained on, and "
                                         f"{e} Or give data=path/to/data.yaml.") from None
        elif data is not None:
            check_data(data, (split,))
    elif mode == "export" and data is not None:
        calibrated = str(args.get("quantize")).lower() in {"8", "int8", "w8a8", "w8a16", "w8a32"}  # reads images
        check_data(data, ("val",) if calibrated else ())
    if mode == "predict" and args.get("source") is not None:
        check_source(args["source"])


def check_zoo_paths(args: dict[str, Any]) -> None:
    """The paths of ``yolo-gfl zoo``: each model file or config named in ``models=`` and ``data=``; the zoo checks the
    rest of its request itself (family names such as ``models=yolo11``, seeds, schedule)."""
    models = args.get("models")
    if isinstance(models, str):
        for name in (m.strip() for m in models.split(",")):
            if name.lower().endswith((*YAML_SUFFIXES, ".pt")):
                check_model(name, key="models")
    if args.get("data") is not None:
        check_data(args["data"], ("val",) if args.get("eval_only") is True else ("train", "val"))
