"""yolo_gfl model configs (installed as the package ``yolo_gfl.cfg``; see ``yolo_gfl.configs``)."""
