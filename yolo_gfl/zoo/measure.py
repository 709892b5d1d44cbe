"""Speed and memory figures: timed forward passes (per cell, and all models interleaved), peak memory, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def peak_memory(device) -> tuple[float, str]:
    """(MB, kind): CUDA's peak allocated memory on a GPU, else this process's peak resident set size."""
    import torch

    if device is not None and getattr(device, "type", "cpu") == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = max(u.ru_maxrss for u in usage)  # this process, or its largest finished child (data-loader workers)
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return rss * scale / 2**20, "cpu_peak_rss"


def time_forward(net, x, runs: int, warmup: int, device) -> list[float]:
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            sync()
            t = time.perf_counter()
            net(x)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000)
    return times


def machine_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        cpu = cpu_name(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu = None
    return f"{cpu or platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def cpu_name(cpuinfo: str) -> str | None:
    """The first CPU's model name from /proc/cpuinfo text, with its family and model numbers where given.

    The numbers tell CPU generations apart that share a name: two machines that both call themselves "AMD EPYC" trained
    the same cell to different figures (docs/lab/noise_floor.md, "One seed, one start")."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name")
    if not name:
        return None
    numbers = [f"{label} {fields[key]}" for key, label in (("cpu family", "family"), ("model", "model")) if key in fields]
    return f"{name} ({', '.join(numbers)})" if numbers else name


def measure_speed(weights: dict[str, str], imgsz: int, device: str | None, runs: int, throughput_batch: int = 1,
                  ) -> dict[str, dict[str, Any]]:
    """Latency (and images/s) of each model, all in this process, interleaved round by round.

    Cells run one after another, so their own latency figures meet whatever else the machine did at the time; here
    every model is timed in turn within each round, so a change in load hits all of them alike (the method of
    benchmarks/overhead.py). Returns ``{label: {latency_ms, latency_iqr_ms, img_per_s, threads, runs}}``.
    """
    import copy

    import torch
    from ultralytics.utils.torch_utils import select_device

    from ..model import YOLOGFL

    dev = select_device(device or "", verbose=False)  # also sets torch's CPU threads as Ultralytics does in training
    nets = {m: copy.deepcopy(YOLOGFL(w).model).float().to(dev).fuse(verbose=False).eval() for m, w in weights.items()}
    x = torch.rand(1, 3, imgsz, imgsz, device=dev)
    times: dict[str, list[float]] = {m: [] for m in nets}
    for m, net in nets.items():
        time_forward(net, x, 0, max(3, runs // 10), dev)  # warm-up
    for _ in range(runs):
        for m, net in nets.items():
            times[m] += time_forward(net, x, 1, 0, dev)
    out = {}
    for m, t in times.items():
        q = statistics.quantiles(t, n=4) if len(t) >= 4 else None
        out[m] = {"latency_ms": statistics.median(t), "latency_iqr_ms": q[2] - q[0] if q else None,
                  "img_per_s": 1000 / statistics.median(t), "threads": torch.get_num_threads(), "runs": runs,
                  "device": str(dev), "weights": weights[m]}
    if throughput_batch > 1:
        xb = torch.rand(throughput_batch, 3, imgsz, imgsz, device=dev)
        tb: dict[str, list[float]] = {m: [] for m in nets}
        for _ in range(max(3, runs // 5)):
            for m, net in nets.items():
                tb[m] += time_forward(net, xb, 1, 1, dev)
        for m in nets:
            out[m]["img_per_s"] = throughput_batch * 1000 / statistics.median(tb[m])
    return out


def time_cell(net, imgsz: int, runs: int, throughput_batch: int, device) -> dict[str, Any]:
    """One cell's own latency: the fused model's forward pass, batch 1, at ``imgsz``, on ``device`` (a tenth of
    ``runs``, at least 3, warm up first); images/s from it, or from batches of ``throughput_batch`` when over 1."""
    import copy

    import torch

    fused = copy.deepcopy(net).float().to(device).fuse(verbose=False).eval()
    x = torch.rand(1, 3, imgsz, imgsz, device=device)
    times = time_forward(fused, x, runs, max(3, runs // 10), device)
    out = {"latency_ms": statistics.median(times),
           "latency_iqr_ms": (statistics.quantiles(times, n=4)[2] - statistics.quantiles(times, n=4)[0]
                              if len(times) >= 4 else None)}
    if throughput_batch > 1:
        xb = torch.rand(throughput_batch, 3, imgsz, imgsz, device=device)
        tb = statistics.median(time_forward(fused, xb, max(3, runs // 5), 2, device))
        out["img_per_s"] = throughput_batch * 1000 / tb
    else:
        out["img_per_s"] = 1000 / out["latency_ms"]
    out["throughput_batch"] = throughput_batch
    out["threads"] = torch.get_num_threads()
    return out
