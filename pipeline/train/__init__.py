"""Training on Ray Train: typed config (`config`), data sources and validation pairs (`data`),
the per-worker supervised loop (`loop`), checkpoints found again by run name
(`checkpoints`), the driver that plans, runs, logs and registers (`job`) and the pictures
logged with a run (`figures`). The entry point is `jobs/train.py`.
"""
