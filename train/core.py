"""The training loop every b2b-train model shares: data, forward, loss, backward, step, log, evaluate, save.

A trainer supplies a `Task` (its model, its data, its loss and its held-out figures), never a loop of its
own. The loop makes a run trustworthy:

- **resume**: `last.pt` holds the weights, optimizer, schedule and RNG state, and the data order is a pure
  function of the step, so a run stopped at step k and resumed ends with the weights of an uninterrupted one;
- **interruption**: Ctrl-C or SIGTERM finishes the current step, saves `last.pt` and stops;
- **divergence**: a NaN or Inf loss stops the run and leaves the last good checkpoint untouched;
- **distributed**: under torchrun every process trains a copy on its share of each batch, the gradients
  averaged over the processes after each backward (see train/distributed.py); rank 0 alone evaluates, logs
  and writes files;
- **precision**: `--precision bf16|fp16` runs the forward passes under autocast, fp16 with one gradient
  scaler per optimizer whose state travels in last.pt; weights, optimizer state and evaluation stay fp32.

A task may also bring a `critic` (a GAN's discriminator), stepped with its own optimizer before the model
at every step, and a run may keep an exponential moving average of the weights (`--ema`): then the
average is what is evaluated and saved as the model, and the raw weights travel in last.pt to resume.

A run folder holds `config.json`, `last.pt`, `best.pt` (by the task's held-out figure), `metrics.jsonl`,
`curves.png` and `samples/step_NNNNNN.png` (the task's sample grid at each evaluation).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from blur2blur.data.grid import write_grid
from blur2blur.errors import UserError
from blur2blur.files.atomic import remove_stale_temporaries, write_atomic
from blur2blur.files.locks import Lock
from blur2blur.models import count_parameters
from blur2blur.models.checkpoint import save_checkpoint
from blur2blur.train import distributed
from blur2blur.train.config import RunConfig
from blur2blur.train.crops import StepSampler
from blur2blur.train.distributed import Dist
from blur2blur.train.records import MetricsLog, plot_curves
from blur2blur.train.run_folder import check_new_run, prepare_out, remove_failed_start, resume_config

log = logging.getLogger(__name__)

class Task(Protocol):
    """What a trainer gives the loop."""

    kind: str  # the checkpoint kind of `model`: "deblurrer", "kernel", ...
    model: nn.Module  # the network trained and saved
    dataset: Dataset  # item n is a pure function of n: the data order of a run
    best_metric: str  # the held-out figure (higher is better) that picks best.pt

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise for one batch and the figures to show (detached scalars)."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out figures for the current weights (no randomness: it must not change the run)."""

    def samples(self, model: nn.Module) -> list[list[np.ndarray]]:
        """Rows of uint8 BGR images for the sample grid, e.g. input | output | target."""


class CriticTask(Task, Protocol):
    """A task with a critic trained against the model (a GAN): each step trains the critic, then the model."""

    critic: nn.Module  # the discriminator; `loss` judges the model's output with it (without training it)
    critic_lr: float  # its peak learning rate (the schedule is the model's)

    def critic_loss(self, critic: nn.Module, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The critic's loss for one batch (the model's output taken without gradients) and its figures. It runs
        under the run's autocast: a gradient penalty takes its gradient outside it, in fp32."""


@dataclass
class RunResult:
    last: Path
    best: Path | None
    step: int
    steps: int
    metrics: dict[str, float]
    stopped_by: str | None = None  # "SIGINT" or "SIGTERM" when interrupted before the last step
    main: bool = True  # rank 0 (or the only process): the one that reports


# --------------------------------------------------------------------------- settings


def lr_factor(config: RunConfig) -> Callable[[int], float]:
    """The learning rate after `step` steps, as a fraction of --lr."""
    floor = min(config.min_lr / config.lr, 1.0)
    steps = config.steps

    def decay(t: float) -> float:
        if config.schedule == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
        if config.schedule == "linear":
            return 1.0 if t <= 1 / 3 else floor + (1 - floor) * (1 - t) * 1.5
        return 1.0

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / config.warmup) if config.warmup else 1.0
        return warm * decay(min(step, steps) / steps)

    return factor


HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}
FP16_DEVICES = ("cuda",)  # the CPU computes fp16 slowly and gains nothing by it: bf16 is its half precision


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the forward passes autocast to on `device` (None: fp32, no autocast)."""
    if precision == "fp16" and device.type not in FP16_DEVICES:
        raise UserError(f"--precision fp16 needs a CUDA GPU (here: {device.type}): use --precision bf16 or fp32")
    return HALF.get(precision)


def make_optimizer(parameters: Iterable[nn.Parameter], config: RunConfig, lr: float | None = None
                   ) -> torch.optim.Optimizer:
    """Adam or AdamW (at `lr`, default --lr), fused: one kernel for all parameters instead of a dozen small ops."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(parameters, lr=lr or config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay,
               fused=True)


@dataclass
class Trainee:
    """A network in training and what moves it: its optimizer, learning-rate schedule and gradient scaler (fp16)."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler

    @classmethod
    def make(cls, module: nn.Module, config: RunConfig, device: torch.device, lr: float | None = None) -> Trainee:
        """`module` on `device`, channels-last (the layout oneDNN and cuDNN convolve fastest, and LayerNorm2d's own:
        about 1.2x here), with its optimizer at `lr` (default --lr) and the run's schedule."""
        module = module.to(device, memory_format=torch.channels_last)
        optimizer = make_optimizer(module.parameters(), config, lr)
        return cls(module, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config)),
                   torch.amp.GradScaler(device.type, enabled=config.precision == "fp16"))

    def descend(self, loss: torch.Tensor, dist: Dist) -> None:
        """One step down `loss`: the gradients (scaled in fp16, so that they do not underflow) averaged over the
        processes, then applied (in fp16 skipped, on every process alike, when one is Inf or NaN); then the
        schedule's step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        dist.average_gradients(self.module)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        dist.broadcast(list(self.module.buffers()))  # running statistics, if a network keeps any: rank 0's, as DDP
        self.schedule.step()

    def state(self, prefix: str = "") -> dict:
        """The optimizer's, the schedule's and (fp16) the scaler's state, under last.pt's keys."""
        state = {prefix + "optimizer": self.optimizer.state_dict(), prefix + "schedule": self.schedule.state_dict()}
        if self.scaler.is_enabled():  # the loss scale and its growth count, so that resume is exact
            state[prefix + "scaler"] = self.scaler.state_dict()
        return state

    def load(self, state: dict, prefix: str = "") -> None:
        """Continue from `state` (as `state` wrote it)."""
        self.optimizer.load_state_dict(state[prefix + "optimizer"])
        self.schedule.load_state_dict(state[prefix + "schedule"])
        if prefix + "scaler" in state:
            self.scaler.load_state_dict(state[prefix + "scaler"])


# --------------------------------------------------------------------------- the loop


@contextmanager
def stop_requests() -> Iterator[dict[str, str | None]]:
    """While inside, SIGINT and SIGTERM ask the loop to stop after the current step (a second Ctrl-C stops
    at once). Yields {"by": None or the signal's name}."""
    request: dict[str, str | None] = {"by": None}
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request["by"] == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request["by"] = signal.Signals(signum).name
        log.warning("%s: stopping after this step and saving (Ctrl-C again to stop at once)", request["by"])

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _ignore_signals(worker_id: int) -> None:
    """Data workers leave Ctrl-C and SIGTERM to the main process, which stops the run cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """On `device`, images channels-last like the model."""
    layout = torch.channels_last if tensor.dim() == 4 else torch.preserve_format
    return tensor.to(device, non_blocking=True, memory_format=layout)


def _finite(*models: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for model in models for p in model.parameters())


@torch.no_grad()
def _update_average(average: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """average <- decay' average + (1 - decay') model, decay' = min(decay, (1 + step) / (10 + step)): early
    steps, when the start is no good average, count for more."""
    weight = 1.0 - min(decay, (1 + step) / (10 + step))
    for mine, theirs in zip(average.parameters(), model.parameters()):
        mine.lerp_(theirs, weight)
    for mine, theirs in zip(average.buffers(), model.buffers()):
        mine.copy_(theirs)


def run(config: RunConfig, make_task: Callable[[RunConfig], Task], given: Iterable[str] = ()) -> RunResult:
    """Take the run folder's lock (one writer per folder), read the settings (the saved ones with --resume), join
    the process group (under torchrun), build the task and train it. A new run that fails before its first
    checkpoint leaves nothing behind."""
    if not config.out:
        raise UserError("--out: give a run folder")
    dist = distributed.setup(config.device)
    try:
        out, created = prepare_out(config)  # every process: a bad folder stops them all, not rank 0 alone
        try:
            with Lock(out / ".lock", f"--out {out}") if dist.main else nullcontext():
                started = False  # until the folder is known to hold nothing of another's, nothing in it is removed
                try:
                    config, state = resume_config(config, given)
                    config.check()
                    autocast_dtype(config.precision, dist.device)  # fp16 without a GPU fails before the data loads
                    for name in ("last.pt", "best.pt"):
                        remove_stale_temporaries(out / name)  # left by a killed run: no live writer holds the lock
                    if state is None:
                        check_new_run(out)
                    started = True
                    torch.manual_seed(config.seed)  # the same initial weights on every process
                    task = make_task(config)
                    if dist.main:
                        log.info("settings: %s", ", ".join(f"{k} {v}" for k, v in asdict(config).items()))
                        write_atomic(out / "config.json", json.dumps(asdict(config), indent=2).encode())
                    return fit(task, config, dist, state)
                except BaseException:
                    if dist.main and not config.resume and started:
                        remove_failed_start(out)
                    raise
        except BaseException:
            if dist.main and created:
                try:
                    out.rmdir()  # a folder made for a run that never saved: only if empty, so nothing else goes
                except OSError:
                    pass
            raise
    finally:
        distributed.teardown()


def fit(task: Task, config: RunConfig, dist: Dist = Dist(), state: dict | None = None) -> RunResult:
    """Train `task.model` for `config.steps` steps in total, continuing `state` (OUT/last.pt's) when given."""
    out = Path(config.out)
    last, best_path = out / "last.pt", out / "best.pt"
    trainee = Trainee.make(task.model, config, dist.device)
    model = trainee.module
    average = copy.deepcopy(model).requires_grad_(False) if config.ema else None
    evaluated = average if average is not None else model  # what is evaluated and saved as the run's model
    half = autocast_dtype(config.precision, dist.device)

    def forward() -> torch.autocast:
        """The context of the forward passes and losses (backward and the optimizer run outside it)."""
        return torch.autocast(dist.device.type, dtype=half, enabled=half is not None)

    critic = getattr(task, "critic", None)
    if critic is not None:
        critic = Trainee.make(critic, config, dist.device, task.critic_lr)
    networks = [model] + ([critic.module] if critic is not None else [])
    start, metrics, best = 0, {}, {}
    if state is not None:
        world = state["meta"].get("world", 1)
        if world != dist.world:  # another global batch would train something else
            raise UserError(f"--resume: the run in {out} trained with {world} process(es); resume it with as many, "
                            f"not {dist.world}")
        model.load_state_dict(state["train_state_dict"] if average is not None else state["state_dict"])
        if average is not None:
            average.load_state_dict(state["state_dict"])
        trainee.load(state)
        if critic is not None:
            critic.module.load_state_dict(state["critic"])
            critic.load(state, "critic_")
        _set_rng_state(state["rng"], dist.device)
        start, metrics, best = state["meta"]["step"], state["meta"]["metrics"], state["meta"]["best"]
    for module in networks + ([average] if average is not None else []):  # every process starts from rank 0's copy
        dist.broadcast(list(module.parameters()) + list(module.buffers()))
    resumed = state is not None
    records = MetricsLog(out / "metrics.jsonl", resume_from=start if resumed else None) if dist.main else None
    saved_step = start if resumed else None  # the step last.pt holds: the last good checkpoint

    def save(step: int) -> None:
        meta = {"step": step, "steps": config.steps, "world": dist.world, "config": asdict(config),
                "metrics": metrics, "best": best}
        extra = trainee.state()
        if average is not None:
            extra["train_state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        if critic is not None:
            extra.update(critic.state("critic_"),
                         critic={k: v.detach().cpu() for k, v in critic.module.state_dict().items()})
        save_checkpoint(last, evaluated, task.kind, meta=meta, rng=_rng_state(dist.device), **extra)

    def evaluate(step: int) -> None:
        nonlocal metrics, best
        evaluated.eval()
        with torch.no_grad():
            metrics = task.evaluate(evaluated)
            write_grid(out / "samples" / f"step_{step:06d}.png", task.samples(evaluated))
        evaluated.train()
        records.write(step, metrics)
        log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        value = metrics.get(task.best_metric)
        if value is not None and value > best.get(task.best_metric, -math.inf):
            best = {"step": step, task.best_metric: value}
            save_checkpoint(best_path, evaluated, task.kind, meta={"step": step, "config": asdict(config),
                                                               "metrics": metrics})

    if start >= config.steps:
        log.info("%s: the run is complete (step %d of %d)", out, start, config.steps)
        return RunResult(last, best_path if best_path.exists() else None, start, config.steps, metrics,
                         main=dist.main)
    if dist.main:
        log.info("%s %s: %.2f M parameters, %d steps of batch %d x %d process(es), crop %d, on %s%s",
                 task.kind, getattr(model, "arch", ""), count_parameters(model) / 1e6, config.steps, config.batch,
                 dist.world, config.crop, dist.device, f", resuming after step {start}" if start else "")
        if not start:
            evaluate(0)  # where the run starts, for the curves
    loader = DataLoader(task.dataset, batch_size=config.batch, num_workers=config.workers,
                        sampler=StepSampler(start, config.steps, config.batch, dist.rank, dist.world),
                        worker_init_fn=_ignore_signals, pin_memory=dist.device.type == "cuda",
                        generator=torch.Generator())  # its own: the loader must not draw from the run's RNG
    bar = tqdm(total=config.steps, initial=start, desc=task.kind, unit="step", disable=not dist.main,
               dynamic_ncols=True)
    sums: dict[str, torch.Tensor] = {}
    window, tick, step, stopping = 0, time.perf_counter(), start, False
    model.train()
    try:
        with stop_requests() as stop, logging_redirect_tqdm():
            for step, batch in enumerate(loader, start + 1):
                batch = [_to_device(t, dist.device) for t in batch]
                figures = {}
                if critic is not None:  # the critic first, against the model as it stands
                    with forward():
                        critic_loss, figures = task.critic_loss(critic.module, model, batch)
                    _check_finite(dist, critic_loss, figures, step, last, saved_step, config)
                    critic.descend(critic_loss, dist)
                with forward():
                    loss, model_figures = task.loss(model, batch)
                figures.update(model_figures)
                stopping = _check_finite(dist, loss, figures, step, last, saved_step, config, stop["by"] is not None)
                trainee.descend(loss, dist)
                if average is not None:
                    _update_average(average, model, config.ema, step)
                for key, value in figures.items():
                    sums[key] = sums.get(key, 0.0) + value.detach().float()  # bf16 figures summed in fp32
                window += 1
                bar.update()
                if dist.main and (step % config.log_every == 0 or step == config.steps):
                    now = time.perf_counter()
                    shown = {k: float(v) / window for k, v in sums.items()}
                    records.write(step, {**shown, "lr": trainee.schedule.get_last_lr()[0],
                                         "steps_per_s": window / max(now - tick, 1e-9)})
                    bar.set_postfix({**{k: f"{v:.4g}" for k, v in shown.items()},
                                     "lr": f"{trainee.schedule.get_last_lr()[0]:.1e}"}, refresh=False)
                    sums, window, tick = {}, 0, now
                due = step % config.eval_every == 0 or step == config.steps
                if due or stopping:
                    if not _finite(*networks):  # checked by every process: their weights are the same
                        raise UserError(_diverged(step, "the weights hold NaN or Inf", last, saved_step, config))
                    if dist.main:
                        if due:
                            evaluate(step)
                        save(step)
                    saved_step = step
                if stopping:
                    break
    finally:
        bar.close()
        if dist.main:
            try:
                plot_curves(records, out / "curves.png", f"{task.kind} {getattr(model, 'arch', '')} — {out.name}")
            except Exception as err:  # a missing plot must neither fail a run nor hide why it failed
                log.warning("could not draw %s: %s", out / "curves.png", err)
    dist.barrier()  # no process leaves (and ends torchrun's job) before rank 0 has saved
    stopped_by = (stop["by"] or "SIGTERM") if stopping and step < config.steps else None  # signalled: any process
    return RunResult(last, best_path if best_path.exists() else None, step, config.steps, metrics, stopped_by,
                     dist.main)


def _check_finite(dist: Dist, loss: torch.Tensor, figures: dict[str, torch.Tensor], step: int, last: Path,
                  saved_step: int | None, config: RunConfig, stop: bool = False) -> bool:
    """Raise UserError when the loss of any process is NaN or Inf; return whether any process asks to stop."""
    stopping, diverged = dist.any(stop, not torch.isfinite(loss))
    if diverged:
        shown = ", ".join(f"{k} {float(v):.4g}" for k, v in figures.items())
        what = (f"the loss is {loss.item()} ({shown})" if not torch.isfinite(loss)
                else "another process's loss is NaN or Inf")
        raise UserError(_diverged(step, what, last, saved_step, config))
    return stopping


def _diverged(step: int, what: str, last: Path, saved_step: int | None, config: RunConfig) -> str:
    kept = (f"the last good checkpoint {last} (step {saved_step}) is kept" if saved_step is not None
            else "no checkpoint was written yet")
    return f"training diverged at step {step}: {what}; {kept}; lower --lr (now {config.lr:g}) and start a new run"
