import itertools
import re

import pytest
import torch

from elmo_bench.tasks.crf import (
    ConditionalRandomField,
    TransitionMask,
    bioes_transition_mask,
    iob2_transition_mask,
)

IOB2_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES_LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC"]


def _random_crf(num_tags, allowed=None, seed=0):
    generator = torch.Generator().manual_seed(seed)
    crf = ConditionalRandomField(num_tags, allowed).double()
    with torch.no_grad():
        for parameter in (crf.transitions, crf.start, crf.end):
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return crf


def _random_batch(batch, steps, num_tags, seed):
    generator = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, steps, num_tags, generator=generator, dtype=torch.float64) * 2
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps  # at least one full row
    mask = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)  # (batch, steps)
    return emissions, mask, lengths.tolist()


def _allowed_paths(crf, length):
    """Every tag path of this length that the CRF's mask allows, by enumeration."""
    start, moves, end = crf.allowed_start.tolist(), crf.allowed_transitions.tolist(), crf.allowed_end.tolist()
    for path in itertools.product(range(crf.num_tags), repeat=length):
        if start[path[0]] and end[path[-1]] and all(moves[a][b] for a, b in zip(path, path[1:])):
            yield path


def _brute_score(crf, emissions, path):
    """The CRF's score of one path, term by term, in plain Python floats."""
    score = crf.start[path[0]].item() + crf.end[path[-1]].item()
    score += sum(emissions[t, tag].item() for t, tag in enumerate(path))
    score += sum(crf.transitions[a, b].item() for a, b in zip(path, path[1:]))
    return score


def _brute_force(crf, emissions, length):
    """(all allowed paths, their scores, log Z) for one row."""
    paths = list(_allowed_paths(crf, length))
    scores = torch.tensor([_brute_score(crf, emissions, path) for path in paths], dtype=torch.float64)
    return paths, scores, torch.logsumexp(scores, dim=0).item()


def _check_against_brute_force(crf, emissions, mask, lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    gold = torch.full(mask.shape, -100, dtype=torch.long)  # padding tags must be ignored
    expected_likelihood, expected_best = [], []
    for row, length in enumerate(lengths):
        paths, scores, log_z = _brute_force(crf, emissions[row], length)
        pick = torch.randint(len(paths), (1,), generator=generator).item()
        gold[row, :length] = torch.tensor(paths[pick])
        expected_likelihood.append(scores[pick].item() - log_z)
        expected_best.append(list(paths[scores.argmax().item()]))
    likelihood = crf.log_likelihood(emissions, gold, mask)
    assert likelihood.shape == (len(lengths),)
    torch.testing.assert_close(likelihood, torch.tensor(expected_likelihood, dtype=torch.float64), rtol=0, atol=1e-6)
    assert crf.viterbi_decode(emissions, mask) == expected_best


@pytest.mark.parametrize("num_tags", [3, 4])
@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_matches_brute_force_without_constraints(num_tags, steps):
    crf = _random_crf(num_tags, seed=steps)
    emissions, mask, lengths = _random_batch(6, steps, num_tags, seed=10 * num_tags + steps)
    _check_against_brute_force(crf, emissions, mask, lengths, seed=steps)


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_matches_brute_force_with_iob2_constraints(steps):
    crf = _random_crf(len(IOB2_LABELS), iob2_transition_mask(IOB2_LABELS), seed=steps)
    emissions, mask, lengths = _random_batch(6, steps, len(IOB2_LABELS), seed=100 + steps)
    emissions[:, :, 2] += 3.0  # make I-PER tempting, so that the constraint has to bite
    _check_against_brute_force(crf, emissions, mask, lengths, seed=steps)


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_with_random_constraints(seed):
    generator = torch.Generator().manual_seed(seed)
    num_tags = 4
    allowed = TransitionMask(
        start=torch.rand(num_tags, generator=generator) < 0.6,
        transitions=(torch.rand(num_tags, num_tags, generator=generator) < 0.6) | torch.eye(num_tags, dtype=torch.bool),
        end=torch.rand(num_tags, generator=generator) < 0.6,
    )
    allowed.start[0] = allowed.end[0] = True  # the all-0 path is always allowed, so each row has one
    crf = _random_crf(num_tags, allowed, seed=seed)
    emissions, mask, lengths = _random_batch(6, 4, num_tags, seed=seed)
    _check_against_brute_force(crf, emissions, mask, lengths, seed=seed)


def test_untrained_crf_decodes_like_per_token_argmax():
    crf = ConditionalRandomField(5)
    emissions, mask, lengths = _random_batch(4, 6, 5, seed=3)
    expected = [emissions[row, :length].argmax(dim=1).tolist() for row, length in enumerate(lengths)]
    assert crf.viterbi_decode(emissions.float(), mask) == expected


def test_gradients_finite_even_for_a_forbidden_gold_path():
    crf = _random_crf(len(IOB2_LABELS), iob2_transition_mask(IOB2_LABELS))
    emissions, mask, _ = _random_batch(3, 4, len(IOB2_LABELS), seed=5)
    emissions.requires_grad_(True)
    gold = torch.tensor([[2, 2, 0, 0], [0, 4, 1, 2], [1, 2, 2, 0]])  # row 0 starts with I-PER, row 1 has O -> I-LOC
    likelihood = crf.log_likelihood(emissions, gold, mask)
    assert torch.isfinite(likelihood).all()
    assert likelihood[0] < -1000 and likelihood[2] > -1000  # forbidden paths are (nearly) impossible
    (-likelihood.sum()).backward()
    for tensor in (emissions, crf.transitions, crf.start, crf.end):
        assert torch.isfinite(tensor.grad).all()
    # Forbidden scores are constants: their parameters get no gradient and never move.
    assert (crf.transitions.grad[~crf.allowed_transitions] == 0).all()
    assert (crf.start.grad[~crf.allowed_start] == 0).all()


@pytest.fixture
def one_thread():
    # The tensors here are tiny: with a busy machine, a second intra-op thread makes each step ~10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_learns_tag_to_tag_dependency(one_thread):
    # Tag t is (tag 0 + t) mod 3. Only the first token's word reveals its tag; later words are noise,
    # so 100% accuracy needs the learned transitions, not the emissions.
    torch.manual_seed(0)
    num_tags, noise_words = 3, 5

    def make(count):
        lengths = torch.randint(1, 9, (count,))
        steps = int(lengths.max())
        mask = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)  # (count, steps)
        first = torch.randint(num_tags, (count, 1))
        tags = (first + torch.arange(steps)) % num_tags
        words = torch.randint(num_tags, num_tags + noise_words, (count, steps))
        words[:, 0] = first[:, 0]
        return words, tags, mask

    words, tags, mask = make(64)
    embed = torch.nn.Embedding(num_tags + noise_words, num_tags)
    crf = ConditionalRandomField(num_tags)
    optimizer = torch.optim.Adam([*embed.parameters(), *crf.parameters()], lr=0.1)
    for _ in range(200):
        optimizer.zero_grad()
        loss = -crf.log_likelihood(embed(words), tags, mask).mean()
        loss.backward()
        optimizer.step()

    test_words, test_tags, test_mask = make(200)
    with torch.no_grad():
        emissions = embed(test_words)
        decoded = crf.viterbi_decode(emissions, test_mask)
    gold = [row[:length] for row, length in zip(test_tags.tolist(), test_mask.sum(1).tolist())]
    assert decoded == gold
    per_token = emissions.argmax(dim=2)[test_mask]  # what the emissions alone would say
    assert (per_token == test_tags[test_mask]).float().mean() < 0.8


def test_iob2_mask_by_hand():
    mask = iob2_transition_mask(IOB2_LABELS)
    assert mask.start.tolist() == [True, True, False, True, False]
    assert mask.end.tolist() == [True] * 5
    #                                  to:  O      B-PER  I-PER  B-LOC  I-LOC
    assert mask.transitions.tolist() == [[True, True, False, True, False],  # from O
                                         [True, True, True, True, False],  # from B-PER
                                         [True, True, True, True, False],  # from I-PER
                                         [True, True, False, True, True],  # from B-LOC
                                         [True, True, False, True, True]]  # from I-LOC


def _allowed_by_mask(mask, path):
    return (mask.start[path[0]] and mask.end[path[-1]]
            and all(mask.transitions[a, b] for a, b in zip(path, path[1:])))


@pytest.mark.parametrize(
    "labels, make_mask, valid_pattern",
    [
        (IOB2_LABELS, iob2_transition_mask, r"((O|B-(\w+)( I-\3)*)( |$))+"),
        (BIOES_LABELS, bioes_transition_mask, r"((O|S-\w+|B-(\w+)( I-\3)* E-\3)( |$))+"),
    ],
)
def test_mask_allows_exactly_the_well_formed_sequences(labels, make_mask, valid_pattern):
    mask = make_mask(labels)
    for length in range(1, 5):
        for path in itertools.product(range(len(labels)), repeat=length):
            text = " ".join(labels[tag] for tag in path)
            assert _allowed_by_mask(mask, path) == bool(re.fullmatch(valid_pattern, text)), text


@pytest.mark.parametrize("make_mask", [iob2_transition_mask, bioes_transition_mask])
def test_masks_reject_unknown_labels(make_mask):
    with pytest.raises(ValueError, match="'NNP'"):
        make_mask(["O", "NNP"])


def test_input_errors():
    crf = ConditionalRandomField(3)
    emissions = torch.zeros(2, 3, 3)
    tags = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="at least one"):
        crf.log_likelihood(emissions, tags, torch.tensor([[True, True, True], [False, False, False]]))
    with pytest.raises(ValueError, match="padding must come at the end"):
        crf.viterbi_decode(emissions, torch.tensor([[True, False, True], [True, True, True]]))
    with pytest.raises(ValueError, match="bool"):
        crf.viterbi_decode(emissions, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(batch, steps, 3\)"):
        crf.viterbi_decode(torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one"):
        crf.viterbi_decode(torch.zeros(2, 0, 3), torch.ones(2, 0, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        crf.log_likelihood(emissions, torch.full((2, 3), 3), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="TransitionMask is for 4 tags"):
        ConditionalRandomField(3, iob2_transition_mask(["O", "B-X", "I-X", "B-Y"]))
    with pytest.raises(ValueError, match="transitions must be a bool tensor"):
        everything = torch.ones(3, dtype=torch.bool)
        TransitionMask(everything, torch.ones(3, 2, dtype=torch.bool), everything)


def test_constraints_travel_with_state_dict():
    crf = _random_crf(len(IOB2_LABELS), iob2_transition_mask(IOB2_LABELS))
    copy = ConditionalRandomField(len(IOB2_LABELS)).double()
    copy.load_state_dict(crf.state_dict())
    assert torch.equal(copy.allowed_transitions, crf.allowed_transitions)
