"""Model zoo: train several detectors with one schedule and seeds, evaluate each the same way, and tabulate them.

    yolo-gfl zoo models=yolov8n.yaml,yolov8n-gfl.yaml data=synthetic-n500-v100-i160 epochs=10 seeds=0,1,2 imgsz=160
    yolo-gfl zoo eval_only=True models=a/weights/best.pt,b/weights/best.pt data=coco128.yaml imgsz=640

    from yolo_gfl.zoo import run_zoo
    rows = run_zoo(models=["yolov8n.yaml", "yolov8n-gfl.yaml"], data="coco128.yaml", epochs=10, seeds=(0, 1, 2),
                   imgsz=320, project="/abs/runs", name="zoo", batch=16, device="cpu")

A *cell* is one model trained with one seed. Every cell gets the same Ultralytics arguments (the schedule, data,
``imgsz`` and any extra train argument), ``seed=<its seed>`` and ``deterministic=True``, so models differ only in
themselves; Ultralytics' seeded loader then gives every model the same data order for a seed. Each cell then runs the
same evaluation on the val split of ``data``:

* Ultralytics' mAP50, mAP75 and mAP50-95 (``metrics.box``), from ``best.pt``;
* pycocotools' AP (``YOLOGFL.val(coco=True)``) and the score-IoU Spearman correlation (``calibration=True``);
* parameters and GFLOPs at the val ``imgsz`` (Ultralytics' ``get_num_params`` / ``get_flops``, unfused model);
* inference latency: the median over ``latency_runs`` timed forward passes of the fused model, batch 1, at ``imgsz``,
  after warm-up, on the cell's device (forward pass only: no pre-processing, no NMS); images/s from it, or from
  batches of ``throughput_batch`` when that is over 1;
* training time per epoch: the mean time of the training loop per epoch (Ultralytics' ``on_train_epoch_start`` to
  ``on_train_epoch_end``, validation excluded), and the total from ``results.csv`` (validation included);
* peak memory of the training: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak resident set size of the
  cell's process (every cell runs in its own process, ``python -m yolo_gfl.zoo --cell``, so cells cannot leak into
  each other's figures or memory).

Layout of a zoo folder (``<project>/<name>``)::

    zoo.json                   the request (models, data, schedule, seeds, arguments)
    cells/<model>-s<seed>.json one finished cell: every figure above, its settings, versions, paths
    cells/<model>-s<seed>.log  the cell's full output
    cells/<model>-s<seed>/     train/ (Ultralytics run: weights/best.pt, results.csv) and val/ (BoxPR_curve.png, ...)
    zoo.csv                    one row per cell
    zoo.md                     one row per model: mean and sample standard deviation over the seeds
    zoo_ap_latency.png         mAP50-95 against latency, one point per model (error bars: std over seeds)
    zoo_pr.png                 every model's precision-recall curve at IoU 0.5 (all classes, mean over seeds)

Resume: running the same request again skips every cell whose JSON is complete and made with the same settings; a
cell without its JSON (interrupted) is redone, continuing its training from ``last.pt`` when one is there. A cell
JSON made with other settings stops the run up front (choose another ``name=`` or delete the folder).
``eval_only=True`` takes checkpoints (``models=a.pt,b.pt``) and runs only the evaluation; each checkpoint's model
config and seed, read from it, label its row.

Modules, one job each: ``request`` (the arguments and their checks, the list of cells), ``runner`` (``run_zoo``: the
cells' processes), ``cell`` (one cell: train, evaluate, time), ``measure`` (latency, peak memory), ``tables`` (zoo.csv,
zoo.md, plots), ``records`` (the JSON files), ``command`` (``yolo-gfl zoo``).
"""

from .command import main_zoo
from .request import ZooCellError, ZooError, default_models
from .runner import run_zoo
from .tables import ZOO_CSV_COLUMNS

__all__ = ["run_zoo", "default_models", "ZooError", "ZooCellError", "ZOO_CSV_COLUMNS", "main_zoo"]
