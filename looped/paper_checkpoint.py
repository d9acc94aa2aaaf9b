"""Checkpoints of the paper's code (``ashlab11/generalization``): ``from_paper`` and ``looped import-paper``.

The paper's ``DTTransformer`` is built from its Hydra model config and saved with ``torch.save({"net":
state_dict, ...})``. ``from_paper`` turns such a state dict and config into a ``PaperTransformer`` whose
``forward(tokens, iterations=T, logits_at=...)`` gives, at every iteration, the paper's output
``(B, C, *spatial)`` as ``(B, L, C)`` with the squares in row-major order. Its input projection (a linear
map of one-hot planes) becomes the token embedding: token ``t`` is plane ``t`` when the task has as many
tokens as planes (sudoku: the one-hot index, 0 = blank), else token 0 is the all-zero input and token
``t`` is plane ``t - 1`` (chess: 0 = empty square, 1-12 = piece plane + 1; prefix sums: the bit).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import ConfigError
from .paper import PaperConfig, PaperTransformer
from .runs import RunConfig, Run, RunError
from .tasks import Task, get_task

# The paper's model keys (its Hydra config and DTTransformer's constructor), with the constructor's default.
KEYS = {
    "hidden_dim": None, "num_blocks": 1, "injection_type": "concat", "norm_type": "peri", "norm_before_head": True,
    "recall_inner": False, "qk_normalization": False, "post_relu": False, "residual_method": "add", "lanes": 1,
    "attn_type": "full", "in_channels": 1, "out_channels": 2, "num_sinks": 0, "kernel_size": 5,
    "local_attn_pad": False, "ema_act": False, "ccot": "none", "num_ccot_tokens": 10, "noise_prob": 0.0,
    "noise_scale": 0.01, "velocity": 0, "spatial_dims": None, "compile": False, "init_norm": False,
}
# Keys of the paper's model config that only its training reads (accepted, and not needed for the model).
TRAINING_ONLY = {"model", "model_path", "hidden_dropout", "init_method", "max_iters", "monotone_lambda",
                 "monotone_margin", "test_iterations", "width"}
UNSUPPORTED = {  # options the paper's grid does not use, and the value that means "off"
    "ccot": "none", "lanes": 1, "ema_act": False, "velocity": 0, "noise_prob": 0.0, "post_relu": False,
    "local_attn_pad": False,
}
INJECTIONS = {("none", False): "none", ("none", True): "none", ("linear", False): "external", ("linear", True): "internal"}
ATTENTION = {"full": "full", "local": "neighbourhood"}
SPATIAL_TASKS = {1: "prefix-sums", 2: None}  # a 2D board's task follows from its input planes
BOARD_TASKS = {10: "sudoku", 12: "chess"}


def paper_config(config: dict, task: Task) -> PaperConfig:
    """The ``PaperConfig`` of the paper's model config ``config`` (its Hydra keys; a missing key takes
    ``DTTransformer``'s default) for ``task``. Raises ``ConfigError`` naming the first problem."""
    unknown = sorted(set(config) - set(KEYS) - TRAINING_ONLY)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in the paper's model config")
    cfg = {**KEYS, **config}
    for key, off in UNSUPPORTED.items():
        if cfg[key] != off:
            raise ConfigError(f"{key}={cfg[key]!r} is not supported: the paper's grid does not use it (only {off!r})")
    if cfg["hidden_dim"] is None or cfg["spatial_dims"] is None:
        raise ConfigError("the paper's model config must give hidden_dim and spatial_dims")
    injection = (cfg["injection_type"], bool(cfg["recall_inner"]))
    if injection not in INJECTIONS:
        raise ConfigError(f"injection_type={cfg['injection_type']!r} is not supported: the paper's grid uses linear or none")
    if cfg["residual_method"] not in ("add", "gru"):
        raise ConfigError(f"residual_method={cfg['residual_method']!r} is not supported: the grid uses add or gru")
    if cfg["attn_type"] not in ATTENTION:
        raise ConfigError(f"attn_type={cfg['attn_type']!r} is not supported: the grid uses full or local")
    board = tuple(task.model_settings.board or ())
    if len(board) != (0 if cfg["spatial_dims"] == 1 else cfg["spatial_dims"]):
        raise ConfigError(f"a model of spatial_dims={cfg['spatial_dims']} does not fit task {task.name} "
                          f"(a {'board of ' + 'x'.join(map(str, board)) if board else 'sequence'})")
    vocab = task.vocab_size
    if vocab not in (cfg["in_channels"], cfg["in_channels"] + 1):
        raise ConfigError(f"a model of in_channels={cfg['in_channels']} does not fit task {task.name} ({vocab} tokens)")
    return PaperConfig(
        vocab_size=vocab, num_classes=int(cfg["out_channels"]), d_model=int(cfg["hidden_dim"]), n_heads=8,
        blocks=int(cfg["num_blocks"]), recall=INJECTIONS[injection], norm=str(cfg["norm_type"]),
        residual=str(cfg["residual_method"]), attention=ATTENTION[cfg["attn_type"]], kernel_size=int(cfg["kernel_size"]),
        sinks=int(cfg["num_sinks"]), board=board, qk_norm=bool(cfg["qk_normalization"]),
        head_norm=bool(cfg["norm_before_head"]), input_norm=bool(cfg["init_norm"]),
    )


def task_of(config: dict) -> str:
    """The task a paper model config is for, from its geometry (1D: prefix sums; 10 planes: sudoku; 12: chess)."""
    dims, planes = config.get("spatial_dims"), config.get("in_channels", KEYS["in_channels"])
    name = SPATIAL_TASKS.get(dims) or BOARD_TASKS.get(planes)
    if name is None:
        raise ConfigError(f"no task has spatial_dims={dims!r} and in_channels={planes!r}; name the task")
    return name


def rename(key: str) -> str:
    """A parameter name of the paper's ``DTTransformer`` as ``PaperTransformer`` names it."""
    key = key.replace("_orig_mod.", "").removeprefix("module.")  # torch.compile and DataParallel wrappers
    for old, new in (("recur_blocks.", "blocks."), ("pre_norm_func", "pre"), ("peri_norm_func", "peri"),
                     ("post_norm_func", "post"), (".Wx.", ".recall.wx."), (".Wh.", ".recall.wh."),
                     ("attn.out_proj", "attn.out"), (".gru.", ".residual.cell."), ("init_norm.", "input_norm.")):
        key = key.replace(old, new)
    return key


def embedding(weight: torch.Tensor, bias: torch.Tensor, vocab: int) -> torch.Tensor:
    """(vocab, d) the projection of each token's one-hot planes: ``W[:, t] + b``, or with a zero token first."""
    rows = (weight.T + bias).to(weight.dtype)
    return rows if vocab == weight.shape[1] else torch.cat([bias[None].to(weight.dtype), rows])


def from_paper(state_dict: dict, config: dict, task: str | Task | None = None) -> PaperTransformer:
    """A ``PaperTransformer`` with the weights of the paper's ``DTTransformer``.

    Args:
        state_dict: the paper's ``net.state_dict()`` (the ``"net"`` entry of its checkpoints).
        config: its model config (Hydra keys: hidden_dim, injection_type, recall_inner, norm_type, ...).
        task: the task it was trained on; default: from the config's geometry.
    Raises ``ConfigError`` for an unsupported or unknown option, a missing or misshapen tensor.
    """
    task = get_task(task or task_of(config))
    model = PaperTransformer(paper_config(config, task))
    state = {rename(k): v for k, v in state_dict.items() if not k.endswith("ccot_tokens")}
    for key in ("projection.weight", "projection.bias"):
        if key not in state:
            raise ConfigError(f"the state dict lacks {key}")
    weight, bias = state.pop("projection.weight"), state.pop("projection.bias")
    if weight.shape != (model.cfg.d_model, config.get("in_channels", KEYS["in_channels"])):
        raise ConfigError(f"projection.weight has shape {tuple(weight.shape)}, not (hidden_dim, in_channels)")
    state["embed.weight"] = embedding(weight, bias, model.cfg.vocab_size)
    expected = model.state_dict()
    missing, unknown = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unknown:
        raise ConfigError(f"the state dict does not fit the config: {'lacks ' + missing[0] if missing else ''}"
                          f"{'; ' if missing and unknown else ''}{'has an unexpected ' + unknown[0] if unknown else ''}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ConfigError(f"{key} has shape {tuple(value.shape)}, the config makes it {tuple(expected[key].shape)}")
    model.to(weight.dtype).load_state_dict(state)  # in the checkpoint's precision
    return model.eval()


def read_checkpoint(path: Path) -> dict:
    """The state dict of a paper checkpoint: a ``torch.save`` file (read with ``weights_only``, so nothing
    but tensors and plain containers is unpickled), its ``"net"`` entry if present, or a safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"cannot read {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file can fail in many ways inside the readers
        raise RunError(f"cannot read {path} as a checkpoint: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    state = data.get("net", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(f"{path} holds no state dict (a dict of tensors, or one under 'net')")
    return state


def read_config(path: Path) -> tuple[dict, str | None]:
    """The model config in a YAML file (the model's keys, or a whole Hydra config with ``problem.model``),
    and the problem it names, if any."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise RunError(f"cannot read {path}: no such file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no mapping of model keys")
    problem = data.get("problem") if isinstance(data.get("problem"), dict) else None
    if problem is not None:
        model = problem.get("model")
        if not isinstance(model, dict):
            raise ConfigError(f"{path}: problem.model is missing")
        return dict(model), problem.get("name")
    return data, None


PROBLEMS = {"prefix_sums": "prefix-sums", "sudoku": "sudoku", "chess": "chess"}  # the paper's problem names


def import_paper(checkpoint: Path, config: Path, task: str, out: Path) -> Path:
    """``looped import-paper``: a run directory in ``out`` holding the paper checkpoint's model, for
    ``looped eval``, ``analyze`` and ``solve``. Everything is checked before anything is written."""
    model_cfg, problem = read_config(config)
    if problem is not None and PROBLEMS.get(problem, problem) != get_task(task).name:
        raise ConfigError(f"{config} is for the paper's problem {problem!r}, not task {task!r}")
    task_obj = get_task(task).for_paper()
    model = from_paper(read_checkpoint(checkpoint), model_cfg, task_obj)
    run = Run(out)
    if run.exists():
        raise RunError(f"{out} already holds a run; choose a new directory")
    run.write_config(RunConfig(task_obj, model.cfg))
    run.write_weights(model)
    return out
