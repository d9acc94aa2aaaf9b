"""The shared config helpers: type checks from real annotations, and the architecture registry."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from looped.config import ARCHITECTURES, ConfigError, check_field_types, config_from_dict, from_known_fields


@dataclass
class Example:
    steps: int = 1
    lr: float = 1e-3
    name: str = "x"
    flag: bool = False
    budget: int | None = None
    sizes: list[int] = field(default_factory=list)
    pairs: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        check_field_types(self)


@pytest.mark.parametrize("kwargs", [{}, {"lr": 3}, {"budget": 5}, {"sizes": [1, 2]}, {"pairs": [[1], [2, 3]]}])
def test_values_of_the_annotated_type_pass(kwargs):
    Example(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 1.5}, "steps must be an int"),
    ({"steps": True}, "steps must be an int"),
    ({"lr": "fast"}, "lr must be a float"),
    ({"flag": 1}, "flag must be a bool"),
    ({"budget": "5"}, "budget must be an int or null"),
    ({"sizes": 3}, "sizes must be a list"),
])
def test_values_of_another_type_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Example(**kwargs)


def test_unknown_keys_are_named():
    with pytest.raises(ConfigError, match="unknown example config keys: colour, size"):
        from_known_fields(Example, {"steps": 2, "size": 1, "colour": 0}, "example")


def test_every_shipped_architecture_round_trips_through_the_registry():
    assert {"looped", "dtnet"} <= set(ARCHITECTURES)
    for cls in ARCHITECTURES.values():
        cfg = cls()
        assert config_from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown model architecture 'resnet'"):
        config_from_dict({"arch": "resnet"})


def test_a_misspelt_task_setting_fails_when_the_task_class_is_defined():
    from looped.tasks import ModelSettings, Task

    with pytest.raises(TypeError, match="atention"):
        class Misspelt(Task):  # noqa: F841
            model_settings = ModelSettings(atention="groups")
    with pytest.raises(ConfigError, match="d_model"):
        ModelSettings(d_model="64")


def test_every_task_setting_reaches_an_architecture_and_every_task_builds_every_architecture():
    """A setting no architecture takes would be dropped silently (as when a config field is renamed)."""
    from dataclasses import fields

    from looped.config import ARCHITECTURES, model_config
    from looped.tasks import TASKS, ModelSettings, get_task

    everything = ModelSettings(board=(9, 9), attention="full", causal=False, groups=((0,),), position_sizes=(9,),
                               d_model=8, n_heads=2)
    taken = set().union(*(cls.task_defaults(everything) for cls in ARCHITECTURES.values()))
    assert taken == {f.name for f in fields(ModelSettings)}
    for name in set(TASKS) - {"sequences"}:  # sequences needs a data folder
        task = get_task(name)
        for arch in ARCHITECTURES:
            model_config(task, arch)  # raises if a setting maps to a field the architecture lacks
