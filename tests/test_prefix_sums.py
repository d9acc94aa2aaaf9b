import pytest
import torch

from looped.tasks import InputError, get_task
from looped.tasks.prefix_sums import prefix_parity


def reference_prefix_parity(bits: list[int]) -> list[int]:
    out, acc = [], 0
    for b in bits:
        acc ^= b
        out.append(acc)
    return out


def test_targets_match_a_running_xor():
    task = get_task("prefix-sums")
    batch = task.generate(task.split("37"), 50, seed=3)
    for x, y in zip(batch.inputs.tolist(), batch.targets.tolist()):
        assert y == reference_prefix_parity(x)


def test_prefix_parity_on_analytic_cases():
    assert prefix_parity(torch.tensor([0, 0, 0])).tolist() == [0, 0, 0]
    assert prefix_parity(torch.ones(6, dtype=torch.long)).tolist() == [1, 0, 1, 0, 1, 0]


def test_generation_is_deterministic_by_seed_and_fresh_across_seeds():
    task = get_task("prefix-sums")
    split = task.split("64")
    a, b, c = task.generate(split, 20, 1), task.generate(split, 20, 1), task.generate(split, 20, 2)
    assert torch.equal(a.inputs, b.inputs)
    assert not torch.equal(a.inputs, c.inputs)


def test_any_length_on_demand():
    task = get_task("prefix-sums")
    assert task.generate(task.split("3000"), 2, 0).inputs.shape == (2, 3000)


@pytest.mark.parametrize("text", ["", "   ", "0120", "abc", "01 10", "1" * 100_001])
def test_parse_rejects_bad_bit_strings(text):
    with pytest.raises(InputError):
        get_task("prefix-sums").parse(text)


def test_parse_and_decode_round_trip():
    task = get_task("prefix-sums")
    tokens = task.parse(" 0110101\n")
    assert tokens.tolist() == [0, 1, 1, 0, 1, 0, 1]
    logits = torch.nn.functional.one_hot(prefix_parity(tokens), 2).float()
    assert task.decode("0110101", tokens, logits) == "0100110"


@pytest.mark.parametrize("name", ["0", "-3", "abc", "1.5"])
def test_bad_split_names(name):
    with pytest.raises(InputError):
        get_task("prefix-sums").split(name)


def test_score_is_exact_match():
    task = get_task("prefix-sums")
    t = torch.tensor([[0, 1, 1], [1, 1, 0]])
    p = torch.tensor([[0, 1, 1], [1, 0, 0]])
    assert task.score(p, t).tolist() == [True, False]
