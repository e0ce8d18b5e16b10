"""Training on Ray Train: typed config (`config`), data sources and validation pairs (`data`),
the per-worker supervised loop (`loop`), checkpoints found again by run name
(`checkpoints`), the driver that plans, runs, logs and registers (`job`) and the pictures
logged with a run (`figures`). What differs between models is their task (`tasks`):
restoration (`restoration`, on `data`'s pairs) or classification (`classification`, on
`classify_data`'s labelled crops). The entry point is `jobs/train.py`.
"""
