"""Training: tasks (what a batch is and what a step's loss is), the trainer (one loop that yields
records), previews, runs (saved and shipped checkpoints on disk), jobs (the queue) and checkpoints."""
from karp_models.train.checkpoints import (Checkpoint, CheckpointError, load_checkpoint,
                                           load_trainer_state, read_metadata, save_checkpoint)
from karp_models.train.tasks import CharLM, ImageClassification, Task, make_task
from karp_models.train.trainer import Record, TrainConfig, Trainer, lr_factor

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "load_trainer_state",
           "read_metadata", "save_checkpoint", "CharLM", "ImageClassification", "Task",
           "make_task", "Record", "TrainConfig", "Trainer", "lr_factor"]
