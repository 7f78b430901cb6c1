"""Training from Python: fine-tuning (every weight or LoRA), distillation into a pruned student,
and the intent classifier. Each runs the same library code as the command line (`edgelm
finetune`, `edgelm distill`, `edgelm intent train`) with the GIL released; the callbacks are
called with the GIL held, after each optimizer update (on_step), epoch and validation. An
exception raised in a callback stops the run and comes back to the caller, Ctrl-C
(KeyboardInterrupt) included; the output file is only written by a finished run.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

from . import _edgelm
from ._edgelm import Classifier, Model

ModelLike = Union[Model, str]


def _model(m: ModelLike) -> Model:
    return m if isinstance(m, Model) else Model.load(m)


def _options(given: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in given.items()}


def finetune(model: ModelLike, train: str, output: str, *, val: Optional[str] = None, lora_rank: int = 0,
             lora_alpha: float = 16.0, lora_dropout: float = 0.0, lora_targets: Sequence[str] = ("q", "k", "v", "o"),
             epochs: int = 1, lr: float = 2e-5, batch: int = 8, grad_accum: int = 1, n_ctx: int = 256,
             chat_format: str = "", schedule: str = "constant", warmup: int = 0, clip: float = 1.0,
             weight_decay: float = 0.0, seed: int = 42, n_threads: int = 0, f16: bool = True,
             recompute: bool = False, eval_every: int = 0, patience: int = 0, checkpoint: str = "",
             resume: str = "", plateau_factor: float = 0.5, plateau_patience: int = 2,
             on_step: Optional[Callable[[int, int, float], Any]] = None,
             on_epoch: Optional[Callable[[dict], Any]] = None,
             on_eval: Optional[Callable[[dict], Any]] = None) -> dict:
    """Fine-tunes `model` on `train` (JSON Lines of {"messages": [...]} or {"text": ...}, or a plain text
    file) and writes `output`: the whole model (F16 matrices, or F32 with f16=False) or, with
    lora_rank > 0, a LoRA adapter over the frozen base (load it with Llama(lora_path=...)).
    schedule: "constant", "cosine" or "plateau" (ReduceLROnPlateau on the validation loss).
    on_step(update, total_updates, loss), on_epoch({'epoch', 'train_loss', 'val_loss', 'seconds',
    'tokens_per_second'}), on_eval({'update', 'epoch', 'val_loss', 'lr'}).
    Returns {'initial_val_loss', 'epochs': [...], 'evals': [...], 'updates', 'tokens_trained', 'stopped_early'}.
    """
    opts = _options(dict(lora_rank=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                         lora_targets=lora_targets, epochs=epochs, lr=lr, batch=batch, grad_accum=grad_accum,
                         n_ctx=n_ctx, chat_format=chat_format, schedule=schedule, warmup=warmup, clip=clip,
                         weight_decay=weight_decay, seed=seed, n_threads=n_threads, f16=f16, recompute=recompute,
                         eval_every=eval_every, patience=patience, checkpoint=checkpoint, resume=resume,
                         plateau_factor=plateau_factor, plateau_patience=plateau_patience))
    return _edgelm.finetune(_model(model), train, output, val, opts, on_step, on_epoch, on_eval)


def distill(teacher: ModelLike, train: str, output: str, *, prune_layers: int, val: Optional[str] = None,
            alpha: float = 0.5, temperature: float = 3.0, top_k: int = 64, reverse: bool = False,
            t_squared: bool = True, cache: str = "", epochs: int = 1, lr: float = 1e-4, batch: int = 8,
            grad_accum: int = 1, n_ctx: int = 256, chat_format: str = "", schedule: str = "constant",
            warmup: int = 0, clip: float = 1.0, weight_decay: float = 0.0, seed: int = 42, n_threads: int = 0,
            f16: bool = True, recompute: bool = False, eval_every: int = 0, patience: int = 0,
            on_step: Optional[Callable[[int, int, float], Any]] = None,
            on_epoch: Optional[Callable[[dict], Any]] = None,
            on_eval: Optional[Callable[[dict], Any]] = None,
            on_teacher_progress: Optional[Callable[[int, int], Any]] = None) -> dict:
    """Makes a smaller student: `teacher` without its `prune_layers` least important blocks, trained on
    alpha * CE + (1 - alpha) * T^2 * KL(teacher || student) against the teacher's top_k distributions
    at `temperature` (top_k 0: whole distributions; reverse: KL(student || teacher); cache: a file that
    keeps the teacher's distributions between runs), and writes it to `output`. epochs=0 writes the
    pruned student untrained. Returns the finetune() report plus 'importance' (per block), 'dropped',
    'student_blocks', 'student_params' and 'trained'.
    """
    opts = _options(dict(alpha=alpha, temperature=temperature, top_k=top_k, reverse=reverse, t_squared=t_squared,
                         cache=cache, epochs=epochs, lr=lr, batch=batch, grad_accum=grad_accum, n_ctx=n_ctx,
                         chat_format=chat_format, schedule=schedule, warmup=warmup, clip=clip,
                         weight_decay=weight_decay, seed=seed, n_threads=n_threads, f16=f16, recompute=recompute,
                         eval_every=eval_every, patience=patience))
    return _edgelm.distill(_model(teacher), train, output, prune_layers, val, opts, on_step, on_epoch, on_eval,
                           on_teacher_progress)


def train_classifier(model: ModelLike, train: str, val: str, output: str, *, pooling: str = "mean",
                     hidden: int = 0, epochs: int = 40, lr: float = 2e-3, weight_decay: float = 0.3,
                     batch_size: int = 32, seed: int = 1, patience: int = 6, dropout: float = 0.6,
                     oos_threshold: str = "auto", unfreeze: int = 0, lora_rank: int = 0, n_layers: int = 6,
                     template: str = "{text}", n_threads: int = 0, cache_dir: str = "",
                     on_epoch: Optional[Callable[[dict], Any]] = None) -> dict:
    """Trains an intent classification head on the model's features (JSON Lines of {"text", "label"}; the
    label "oos" marks out-of-scope examples) and writes it to `output`, for Classifier(model, output).
    n_layers: the backbone's blocks used (an early exit); unfreeze / lora_rank: fine-tune the top blocks
    too. on_epoch({'epoch', 'train_loss', 'val_loss', 'val_acc', 'lr', 'seconds', 'best'}).
    Returns {'best_epoch', 'best_val_loss', 'argmax', 'thresholded', 'threshold', ...}.
    """
    opts = dict(pooling=pooling, hidden=hidden, epochs=epochs, lr=lr, weight_decay=weight_decay,
                batch_size=batch_size, seed=seed, patience=patience, dropout=dropout,
                oos_threshold=str(oos_threshold), unfreeze=unfreeze, lora_rank=lora_rank, n_layers=n_layers,
                template=template, n_threads=n_threads, cache_dir=cache_dir)
    return _edgelm.train_classifier(_model(model), train, val, output, opts, on_epoch)


def classifier(model: ModelLike, head_path: str, n_threads: int = 1, max_batch: int = 16) -> Classifier:
    """Classifier(model, head_path) that also takes a model path or cache name."""
    return Classifier(_model(model), head_path, n_threads, max_batch)


__all__ = ["finetune", "distill", "train_classifier", "classifier", "Classifier"]
