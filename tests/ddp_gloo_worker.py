"""Two CPU processes, gloo backend: a few DistributedDataParallel training steps of each variant on real images.

Run by tests/test_ddp.py as ``python tests/ddp_gloo_worker.py OUT.json DATA.yaml MODEL.yaml ...``. Each rank reads its
own shard of coco128 through Ultralytics' dataset and loader (``rank`` -> ``DistributedSampler``), and in the second
step rank 1 trains on a batch with its labels removed: no positives there while rank 0 has some, the case where a
loss that leaves parameters out of the graph makes DDP fail. DDP runs with ``find_unused_parameters=False``, stricter
than Ultralytics' trainer (True), so every parameter must get a gradient on every rank in every step.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

STEPS = 3
BATCH = 4
IMGSZ = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, out: str, data_yaml: str, models: list[str]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), YOLO_OFFLINE="1", YOLO_VERBOSE="False")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    from yolo_gfl.configs import load_model_cfg
    from yolo_gfl.nn.model import build_detection_model

    data = check_det_dataset(data_yaml)
    args = get_cfg(overrides={"imgsz": IMGSZ, "fraction": 0.25, "mosaic": 0.0, "workers": 0})
    dataset = build_yolo_dataset(args, data["train"], BATCH, data, mode="train", stride=32)
    loader = build_dataloader(dataset, BATCH, workers=0, shuffle=True, rank=rank)  # DistributedSampler: own shard
    results = {}
    for name in models:
        torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
        model = build_detection_model(load_model_cfg(name), nc=data["nc"], verbose=False)
        model.args = args
        model.train()
        ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
        start = [p.detach().clone() for p in model.parameters()]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        positives = []
        for step, batch in zip(range(STEPS), loader):
            batch["img"] = batch["img"].float() / 255
            if step == 1 and rank == 1:  # no positives on this rank while the other has some
                batch["batch_idx"], batch["cls"], batch["bboxes"] = (batch[k][:0] for k in ("batch_idx", "cls", "bboxes"))
            positives.append(len(batch["cls"]))
            loss, _ = ddp(batch)
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        moved = max(float((p.detach() - s).abs().max()) for p, s in zip(model.parameters(), start))
        results[name] = {
            "finite": bool(torch.isfinite(flat).all()),
            "max_rank_diff": float((gathered[0] - gathered[1]).abs().max()),
            "moved": moved,
            "labels_per_step": positives,
            "variant": model.variant.as_section() if hasattr(model, "variant") else {},
        }
    if rank == 1:
        with open(out, "w") as f:
            json.dump(results, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    out_file, data_file, *model_names = sys.argv[1:]
    mp.spawn(worker, args=(2, free_port(), out_file, data_file, model_names), nprocs=2, join=True)
