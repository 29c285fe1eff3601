"""The training loop behind ``python -m tracker.train`` and :func:`train`.

One process or many (``torchrun`` sets ``WORLD_SIZE``; DistributedDataParallel over gloo on
CPU, nccl on CUDA). Pair ``g`` of an epoch is a pure function of ``(seed, epoch, g)`` and
rank ``r`` of ``W`` takes, at step ``s``, the pairs ``s*B*W + r*B ... + B - 1``: the same pairs
as one process with batch ``W*B``. Only rank 0 writes the log and the checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..benchmark.accuracy import evaluate
from ..models.network import SiameseNetwork, as_device, build_model
from ..weights import cache_dir
from ..zoo import get_config
from .checkpoints import (latest_checkpoint, load_checkpoint, prepare_run_dir, save_checkpoint,
                          save_model_weights)
from .data.loader import PairDataset
from .data.pairs import PairSampler
from .data.sources import DataSpec, DatasetLoad, load_sequences, parse_data_spec
from .errors import TrainingError
from .objectives import build_objective
from .pretrained import load_backbone_weights
from .recipes import Recipe, resolve_recipe
from .report import RunLog, plot_curves
from .schedules import learning_rate

Note = Callable[[str], None]


@dataclass(frozen=True)
class EpochSummary:
    """One finished epoch: mean losses, the learning rate, throughput, frames that could not
    be read (and were replaced by other pairs), and the validation AUC when ``--val`` is set."""

    epoch: int
    loss: float
    lr: float
    pairs_per_s: float
    seconds: float
    skipped_frames: int
    val_auc: Optional[float] = None


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its files and what each epoch gave."""

    out_dir: Path
    model_path: Path
    epochs: Tuple[EpochSummary, ...]
    best_epoch: Optional[int]
    plot_path: Optional[Path]


class TrainingInterrupted(TrainingError):
    """Ctrl-C: the run stopped after saving a checkpoint it can resume from."""


@dataclass(frozen=True)
class _Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def train(
    model: str,
    data: Sequence[Union[str, DataSpec]],
    out: Union[str, Path],
    *,
    epochs: Optional[int] = None,
    pairs_per_epoch: Optional[int] = None,
    batch_size: Optional[int] = None,
    init_weights: Optional[Union[str, Path]] = None,
    backbone_weights: Optional[Union[str, Path]] = None,
    device: str = "cpu",
    workers: int = 1,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    val: Sequence[Union[str, DataSpec]] = (),
    overrides: Optional[Mapping[str, Any]] = None,
    config: Optional[Union[str, Path]] = None,
    progress: bool = True,
    note: Optional[Note] = None,
) -> TrainResult:
    """Train or fine-tune ``model`` on ``data`` (``"KIND:PATH"`` specs) into ``out``.

    The function form of ``python -m tracker.train`` (the keyword arguments are its options;
    ``overrides`` are its ``--set`` pairs). ``init_weights`` fine-tunes a trained checkpoint
    (with the fine-tuning recipe, :func:`~tracker.train.recipes.finetune_recipe`);
    ``backbone_weights`` starts from an ImageNet backbone as the references do. ``resume``
    continues the run in ``out`` exactly where its last checkpoint stopped. Returns the
    final weights' path (``out/model.pth``, the best validation epoch when ``val`` is given).
    Raises :class:`TrainingInterrupted` on Ctrl-C after saving a resumable checkpoint.
    """
    dist = _start_distributed(device)
    note = note or (lambda text: print(text, file=sys.stderr))
    say = note if dist.main else (lambda text: None)
    try:
        return _Run(model, data, out, epochs, pairs_per_epoch, batch_size, init_weights,
                    backbone_weights, device, workers, seed, resume, overwrite, val, overrides,
                    config, progress and dist.main, say, dist).run()
    finally:
        if dist.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _start_distributed(device: str) -> _Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return _Distributed(rank, world, local_rank)


class _Run:
    """One call of :func:`train`: set-up, the epochs, the final files."""

    def __init__(self, model, data, out, epochs, pairs_per_epoch, batch_size, init_weights,
                 backbone_weights, device, workers, seed, resume, overwrite, val, overrides,
                 config, progress, say, dist) -> None:
        self.config = get_config(model)
        self.name = model
        self.dist = dist
        self.say = say
        self.progress = progress
        self.out = Path(out)
        self.seed = _non_negative_int(seed, "seed")
        self.workers = _non_negative_int(workers, "workers")
        self.device = _training_device(device, dist)
        self.init_weights = _existing(init_weights, "--init-weights")
        self.backbone_weights = _existing(backbone_weights, "--backbone-weights")
        if self.init_weights and self.backbone_weights:
            raise ValueError("--init-weights and --backbone-weights exclude each other: the first "
                             "loads a whole trained network, the second only its backbone")
        self.data = tuple(_spec(d, "--data") for d in data)
        if not self.data:
            raise ValueError("--data: give at least one KIND:PATH")
        self.val = tuple(_spec(v, "--val") for v in val)
        sizes = {"optim.pairs_per_epoch": pairs_per_epoch, "optim.batch_size": batch_size}
        wanted = {k: v for k, v in sizes.items() if v is not None}
        wanted.update(overrides or {})
        recipe = resolve_recipe(model, self.init_weights is not None, config, wanted)
        if epochs is not None:
            recipe = dataclasses.replace(recipe, schedule=recipe.schedule.with_epochs(
                _positive(epochs, "epochs")))
        self.recipe: Recipe = recipe
        self.resume = resume
        self.overwrite = overwrite
        self._partial: Dict[str, Any] = {}

    def identity(self) -> Dict[str, Any]:
        return {
            "model": self.name,
            "recipe": self.recipe.to_dict(),
            "data": [dataclasses.asdict(d) for d in self.data],
            "val": [dataclasses.asdict(v) for v in self.val],
            "init_weights": str(self.init_weights) if self.init_weights else None,
            "backbone_weights": str(self.backbone_weights) if self.backbone_weights else None,
            "seed": self.seed,
        }

    def run(self) -> TrainResult:
        if self.dist.main:
            prepare_run_dir(self.out, self.identity(), overwrite=self.overwrite,
                            resume=self.resume)
        self.dist.barrier()
        sampler = PairSampler(self._load_data(), self.recipe.pairs)
        network = self._network()
        objective = build_objective(self.config, self.recipe.targets,
                                    self.recipe.augment.search_size, self.recipe.optim.cls_weight,
                                    self.recipe.optim.loc_weight)
        groups = _parameter_groups(network, self.recipe)
        optim = self.recipe.optim
        optimizer = torch.optim.SGD(
            [{"params": params, "lr_mult": mult, "name": name} for name, params, mult in groups],
            lr=learning_rate(self.recipe.schedule, 0), momentum=optim.momentum,
            weight_decay=optim.weight_decay,
        )
        # float16 needs a loss scale against underflowing gradients; CPU autocast uses
        # bfloat16, whose range is float32's.
        scaler = (torch.amp.GradScaler("cuda") if optim.amp and self.device.type == "cuda"
                  else None)
        state = self._restore(network, optimizer, scaler)
        history: List[EpochSummary] = [EpochSummary(**e) for e in state.get("history", [])]
        best = state.get("best")
        epoch, step = state.get("epoch", 0), state.get("step", 0)
        with RunLog(self.out, enabled=self.dist.main, resume=self.resume,
                    start_epoch=epoch) as log:
            while epoch < self.recipe.epochs:
                summary, step = self._epoch(network, optimizer, scaler, objective,
                                            sampler, epoch, step, log, history, best)
                if self.val:
                    summary = dataclasses.replace(summary, val_auc=self._validate(network, epoch))
                    if summary.val_auc is not None and (best is None
                                                        or summary.val_auc > best["auc"]):
                        best = {"epoch": epoch, "auc": summary.val_auc}
                        if self.dist.main:
                            save_model_weights(self.out / "best.pth", network)
                history.append(summary)
                log.log_epoch(**dataclasses.asdict(summary))
                epoch, step = epoch + 1, 0
                self._save(network, optimizer, epoch, 0, history, best, scaler=scaler)
                self.say(_epoch_line(summary, self.recipe.epochs))
        return self._finish(network, history, best)

    def _load_data(self) -> List[Tuple[Sequence[Any], float]]:
        cache = cache_dir() / "train-frames"
        loads: List[DatasetLoad] = []
        # Rank 0 decodes videos into the cache first; the others then find them there.
        for turn in (True, False):
            if self.dist.main == turn:
                loads = [load_sequences(spec, cache) for spec in self.data]
            self.dist.barrier()
        for load in loads:
            for line in load.skipped:
                self.say(f"warning: {line}")
        return [(load.sequences, load.spec.weight) for load in loads]

    def _network(self) -> SiameseNetwork:
        network = build_model(self.config)
        initialise(network, self.recipe, self.seed)
        if self.init_weights is not None:
            network.load_weights(self.init_weights)
            self.say(f"fine-tuning from {self.init_weights}")
        else:
            if self.backbone_weights is not None:
                loaded = load_backbone_weights(network, self.backbone_weights)
                self.say(f"backbone: {loaded.loaded} tensors from {self.backbone_weights}"
                         + (f", {len(loaded.missing)} left at their initial values"
                            if loaded.missing else ""))
        return network.to(self.device)

    def _restore(self, network: SiameseNetwork, optimizer: torch.optim.Optimizer,
                 scaler: Optional[Any]) -> Dict[str, Any]:
        if not self.resume:
            return {}
        path = latest_checkpoint(self.out)
        if path is None:
            raise TrainingError(f"--resume {self.out}: no checkpoint to resume from; start the "
                                "run without --resume")
        state = load_checkpoint(path)
        if state.get("step", 0) and state.get("world_size", 1) != self.dist.world:
            raise TrainingError(
                f"--resume {self.out}: the run stopped inside epoch {state['epoch'] + 1} with "
                f"{state.get('world_size', 1)} process(es); resume it with as many")
        self._partial = state.get("partial_epoch", {})
        network.load_weights(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        self.say(f"resuming {self.out} at epoch {state['epoch'] + 1}"
                 + (f", step {state['step'] + 1}" if state.get("step") else ""))
        return state

    def _wrap(self, network: SiameseNetwork) -> nn.Module:
        if self.dist.world == 1:
            return network
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(network, device_ids=ids,
                                                   find_unused_parameters=True)

    def _epoch(self, network, optimizer, scaler, objective, sampler, epoch, step, log,
               history, best) -> Tuple[EpochSummary, int]:
        recipe, dist = self.recipe, self.dist
        lr = learning_rate(recipe.schedule, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        set_trainable(network, recipe, epoch)
        # Wrapped per epoch: DistributedDataParallel syncs the parameters that require a
        # gradient when it is built, and the backbone starts learning at a later epoch.
        trained = self._wrap(network)
        batch = recipe.optim.batch_size
        steps = recipe.optim.pairs_per_epoch // (batch * dist.world)
        if steps < 1:
            raise ValueError(f"--pairs-per-epoch {recipe.optim.pairs_per_epoch} is less than one "
                             f"step of {batch * dist.world} pairs (--batch-size x processes)")
        first = step * batch * dist.world + dist.rank * batch
        indices = [first + s * batch * dist.world + k for s in range(steps - step)
                   for k in range(batch)]
        dataset = PairDataset(sampler, recipe.augment, objective, self.config.network.input_order,
                              self.seed, epoch, indices)
        loader = DataLoader(dataset, batch_size=batch, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda")
        bar = tqdm(total=steps, initial=step, desc=f"epoch {epoch + 1}/{recipe.epochs}",
                   unit="step", disable=not self.progress, dynamic_ncols=True, leave=True)
        partial = self._partial if step else {}
        losses: List[float] = list(partial.get("losses", []))
        skipped = int(partial.get("skipped", 0))
        started = time.perf_counter()
        pairs_done = 0
        try:
            for items in loader:
                total, parts = self._step(trained, optimizer, scaler, objective, items)
                skipped += int(items["skipped"].sum())
                losses.append(total)
                pairs_done += batch * dist.world
                rate = pairs_done / max(time.perf_counter() - started, 1e-9)
                log.log_step(epoch=epoch, step=epoch * steps + step, loss=total, lr=lr,
                             pairs_per_s=rate, loss_cls=parts.get("cls", float("nan")),
                             loss_loc=parts.get("loc", float("nan")))
                bar.set_postfix(loss=f"{total:.4f}", lr=f"{lr:.2e}", pairs_s=f"{rate:.1f}")
                bar.update(1)
                step += 1
        except KeyboardInterrupt:
            bar.close()
            self._save(network, optimizer, epoch, step, history, best,
                       {"losses": losses, "skipped": skipped}, scaler)
            raise TrainingInterrupted(
                f"interrupted in epoch {epoch + 1} at step {step + 1}; continue with "
                f"--resume {self.out}") from None
        bar.close()
        seconds = time.perf_counter() - started
        skipped = _sum_over_ranks(skipped, dist)
        summary = EpochSummary(epoch=epoch, loss=float(np.mean(losses)) if losses else float("nan"),
                               lr=lr, pairs_per_s=pairs_done / max(seconds, 1e-9),
                               seconds=seconds, skipped_frames=skipped)
        if skipped:
            self.say(f"warning: epoch {epoch + 1}: {skipped} frame(s) could not be read; their "
                     "pairs were replaced by others")
        return summary, step

    def _step(self, trained, optimizer, scaler, objective, items) -> Tuple[float, Dict[str, float]]:
        tensors = {k: v.to(self.device, non_blocking=True) for k, v in items.items()}
        autocast = (torch.autocast(device_type=self.device.type, dtype=torch.float16
                                   if self.device.type == "cuda" else torch.bfloat16)
                    if self.recipe.optim.amp else nullcontext())
        with autocast:
            outputs = trained(tensors["z"], tensors["x"])
        losses = objective.loss({k: v.float() for k, v in outputs.items()}, tensors)
        total = losses["total"]
        if not torch.isfinite(total):
            raise TrainingError(f"the loss is {float(total)}; lower the learning rate "
                                "(--set schedule....) or check the data")
        optimizer.zero_grad(set_to_none=True)
        clip = self.recipe.optim.grad_clip
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.unscale_(optimizer)
            if clip > 0:
                nn.utils.clip_grad_norm_(trained.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            total.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(trained.parameters(), clip)
            optimizer.step()
        parts = {k: float(v.detach()) for k, v in losses.items() if k != "total"}
        return float(total.detach()), parts

    def _save(self, network, optimizer, epoch, step, history, best,
              partial: Optional[Dict[str, Any]] = None, scaler: Optional[Any] = None) -> None:
        if not self.dist.main:
            return
        save_checkpoint(self.out / "checkpoint.pth", {
            "format": 1, "model": self.name, "identity": self.identity(),
            "epoch": epoch, "step": step, "world_size": self.dist.world,
            "network": network.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate()},
            "history": [dataclasses.asdict(h) for h in history], "best": best,
            "partial_epoch": partial or {},
            "scaler": scaler.state_dict() if scaler is not None else None,
        })

    def _validate(self, network: SiameseNetwork, epoch: int) -> Optional[float]:
        """Success AUC of the epoch's weights on ``--val`` (mean over the val datasets),
        through the benchmark's evaluation; rank 0 tracks, the others wait."""
        auc: Optional[float] = None
        if self.dist.main:
            folder = self.out / "val"
            folder.mkdir(exist_ok=True)
            weights = folder / f"epoch-{epoch + 1}.pth"
            save_model_weights(weights, network)
            values = []
            for spec in self.val:
                report = evaluate(spec.kind, Path(spec.path), [self.name], weights=weights,
                                  results=folder / "results", reports=folder / "reports",
                                  progress=False)
                result = report.models[0]
                values.append(result.success_auc if result.success_auc is not None else result.ao)
            auc = float(np.mean(values))
        self.dist.barrier()
        return auc

    def _finish(self, network, history, best) -> TrainResult:
        model_path = self.out / "model.pth"
        plot = None
        if self.dist.main:
            if best is not None and (self.out / "best.pth").exists():
                os.replace(self.out / "best.pth", model_path)
                self.say(f"model.pth: epoch {best['epoch'] + 1}, the best validation AUC "
                         f"({best['auc']:.3f})")
            else:
                save_model_weights(model_path, network)
            plot = plot_curves(self.out / "log.jsonl", self.out / "curves.png")
            self.say(f"wrote {model_path} and {plot}")
        self.dist.barrier()
        return TrainResult(self.out, model_path, tuple(history),
                           best["epoch"] if best else None, plot)


def _epoch_line(summary: EpochSummary, epochs: int) -> str:
    line = (f"epoch {summary.epoch + 1}/{epochs}: loss {summary.loss:.4f}, lr {summary.lr:.2e}, "
            f"{summary.pairs_per_s:.1f} pairs/s, {summary.seconds:.0f} s")
    return line + (f", val AUC {summary.val_auc:.3f}" if summary.val_auc is not None else "")


def _parameter_groups(network: SiameseNetwork, recipe: Recipe
                      ) -> List[Tuple[str, List[nn.Parameter], float]]:
    """``(name, parameters, lr multiple)``: the head and neck at 1x, the recipe's backbone
    layers at their multiple; other backbone parameters (and a neck the network does not run)
    never learn."""
    backbone = _backbone_parameters(network, recipe)
    head = list(network.head.parameters())
    if network.neck is not None and network.config.apply_neck:
        head += list(network.neck.parameters())
    groups = [("head", head, 1.0)]
    if backbone:
        groups.append(("backbone", backbone, recipe.optim.backbone_lr_mult))
    return groups


def _backbone_parameters(network: SiameseNetwork, recipe: Recipe) -> List[nn.Parameter]:
    params: List[nn.Parameter] = []
    for path in recipe.optim.backbone_layers:
        try:
            module = network.backbone.get_submodule(path) if path else network.backbone
        except AttributeError:
            names = [n for n, _ in network.backbone.named_modules() if n and "." not in n]
            raise ValueError(f"optim.backbone_layers: the backbone has no module {path!r}; its "
                             f"top-level modules: {', '.join(names)}") from None
        params += [p for p in module.parameters() if all(p is not q for q in params)]
    return params


def set_trainable(network: SiameseNetwork, recipe: Recipe, epoch: int) -> None:
    """Gradients and BatchNorm modes for ``epoch``: the head (and a neck in use) always learn;
    the recipe's backbone layers from ``backbone_train_epoch`` on; frozen modules and, with
    ``freeze_bn``, every BatchNorm run in eval mode."""
    network.train()
    for param in network.parameters():
        param.requires_grad_(False)
    learning = [network.head]
    if network.neck is not None and network.config.apply_neck:
        learning.append(network.neck)
    if epoch >= recipe.optim.backbone_train_epoch:
        learning += [network.backbone.get_submodule(p) if p else network.backbone
                     for p in recipe.optim.backbone_layers]
    learning_ids = set()
    for module in learning:
        for param in module.parameters():
            param.requires_grad_(True)
        learning_ids.update(id(m) for m in module.modules())
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
                recipe.optim.freeze_bn or id(module) not in learning_ids):
            module.eval()


def initialise(network: SiameseNetwork, recipe: Recipe, seed: int) -> None:
    """The weights a run starts from before any file is loaded: torch's initialisation drawn
    after ``torch.manual_seed(seed)``, or with ``optim.init = "kaiming"`` siamfc-pytorch's
    Kaiming-normal convolutions (fan-out, ReLU), zero biases, BatchNorm scale 1 and shift 0."""
    torch.manual_seed(seed)
    for module in network.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    if recipe.optim.init != "kaiming":
        return
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _sum_over_ranks(value: int, dist: _Distributed) -> int:
    if dist.world == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.int64)
    torch.distributed.all_reduce(tensor)
    return int(tensor.item())


def _training_device(device: str, dist: _Distributed) -> torch.device:
    resolved = as_device(device)
    if resolved.type == "cuda" and dist.world > 1 and resolved.index is None:
        resolved = torch.device("cuda", dist.local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    return resolved


def _spec(value: Union[str, DataSpec], option: str) -> DataSpec:
    if isinstance(value, DataSpec):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{option} must be KIND:PATH, got {value!r}")
    return parse_data_spec(value)


def _existing(path: Optional[Union[str, Path]], option: str) -> Optional[Path]:
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path} does not exist")
    return path


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"--{name} must be an int >= 1, got {value!r}")
    return value


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"--{name} must be an int >= 0, got {value!r}")
    return value
