"""Training: tasks (what a batch is), the trainer (a loop that yields records), checkpoints."""
from karp_models.train.checkpoints import (Checkpoint, CheckpointError, load_checkpoint,
                                           load_trainer_state, read_metadata, save_checkpoint)
from karp_models.train.tasks import CharLM, ImageClassification, make_task
from karp_models.train.trainer import Record, TrainConfig, Trainer, lr_factor

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "load_trainer_state",
           "read_metadata", "save_checkpoint", "CharLM", "ImageClassification", "make_task",
           "Record", "TrainConfig", "Trainer", "lr_factor"]
