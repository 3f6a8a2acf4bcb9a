"""A linear-chain conditional random field over tag sequences (Lafferty et al. 2001).

For emissions e (T, K) from a tagger and a tag path y_1..y_T, the CRF scores

    s(y) = start[y_1] + sum_t e[t, y_t] + sum_{t>1} transitions[y_{t-1}, y_t] + end[y_T]
    log p(y | e) = s(y) - log Z,    log Z = logsumexp over all K^T paths of s(path)

log Z comes from the forward algorithm in log space; the best path from Viterbi. A TransitionMask
forbids moves (e.g. O -> I-PER in IOB2): their scores are replaced by FORBIDDEN, a large negative
constant rather than -inf, so that log Z and its gradients stay finite even when a gold path is forbidden.
Forbidden entries get no gradient, so their parameters never move.

The learned start, end and transition scores start at zero: the untrained CRF then decodes exactly
like an independent per-token argmax, and training adds only the structure the data supports.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

FORBIDDEN = -1e4  # exp(-1e4) is 0 even in float64, so forbidden paths add nothing to log Z


@dataclass(frozen=True)
class TransitionMask:
    """Which moves are allowed (True) for K tags."""

    start: torch.Tensor  # (K,) bool: may a sentence start with this tag
    transitions: torch.Tensor  # (K, K) bool, [from, to]
    end: torch.Tensor  # (K,) bool: may a sentence end with this tag

    def __post_init__(self):
        num_tags = self.start.shape[0]
        for name, expected in (("start", (num_tags,)), ("transitions", (num_tags, num_tags)), ("end", (num_tags,))):
            tensor = getattr(self, name)
            if tensor.dtype != torch.bool or tuple(tensor.shape) != expected:
                raise ValueError(f"TransitionMask.{name} must be a bool tensor of shape {expected}, "
                                 f"got {tensor.dtype} {tuple(tensor.shape)}")


class ConditionalRandomField(nn.Module):
    def __init__(self, num_tags: int, allowed: TransitionMask | None = None):
        super().__init__()
        if allowed is None:
            everything = torch.ones(num_tags, dtype=torch.bool)
            allowed = TransitionMask(everything, torch.ones(num_tags, num_tags, dtype=torch.bool), everything)
        if allowed.start.shape[0] != num_tags:
            raise ValueError(f"TransitionMask is for {allowed.start.shape[0]} tags, the CRF has {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # (from, to)
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))
        # Buffers, so that .to(device) and state_dict carry the constraints along with the scores.
        self.register_buffer("allowed_start", allowed.start.clone())
        self.register_buffer("allowed_transitions", allowed.transitions.clone())
        self.register_buffer("allowed_end", allowed.end.clone())

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(tags | emissions) per row: emissions (B, T, K), tags (B, T) long, mask (B, T) bool -> (B,).

        Padding must come at the end of each row; tags at padded positions are ignored.
        """
        if tags.shape != mask.shape:
            raise ValueError(f"tags {tuple(tags.shape)} and mask {tuple(mask.shape)} differ in shape")
        tags = torch.where(mask, tags, torch.zeros_like(tags))  # padded tags may be -100 or anything
        self._check_inputs(emissions, mask, tags)
        return self._path_score(emissions, tags, mask) - self._log_partition(emissions, mask)

    def viterbi_decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The highest-scoring allowed path of each row, as many tags as the row has unpadded steps."""
        self._check_inputs(emissions, mask)
        start, transitions, end = self._allowed_scores()
        batch, steps, num_tags = emissions.shape
        best = start + emissions[:, 0]  # (batch, tags): best score of a path ending in each tag
        keep_tag = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)
        backpointers = []  # per step t >= 1: (batch, tags) best previous tag
        for t in range(1, steps):
            candidates = best.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1)  # (batch, from, to)
            step_best, step_from = candidates.max(dim=1)  # (batch, tags)
            real = mask[:, t].unsqueeze(1)  # (batch, 1)
            best = torch.where(real, step_best, best)
            # On padding the pointer leads back to the same tag, so one backward pass serves all lengths.
            backpointers.append(torch.where(real, step_from, keep_tag))
        tag = (best + end).argmax(dim=1)  # (batch,)
        path = [tag]
        for step_from in reversed(backpointers):
            tag = step_from.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        path = torch.stack(path[::-1], dim=1)  # (batch, steps)
        lengths = mask.sum(dim=1).tolist()
        return [row[:length] for row, length in zip(path.tolist(), lengths)]

    def _allowed_scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        forbidden = torch.tensor(FORBIDDEN, dtype=self.transitions.dtype, device=self.transitions.device)
        return (
            torch.where(self.allowed_start, self.start, forbidden),  # (tags,)
            torch.where(self.allowed_transitions, self.transitions, forbidden),  # (from, to)
            torch.where(self.allowed_end, self.end, forbidden),  # (tags,)
        )

    def _path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions, end = self._allowed_scores()
        real = mask.to(emissions.dtype)  # (batch, steps)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (batch, steps)
        moved = transitions[tags[:, :-1], tags[:, 1:]]  # (batch, steps - 1)
        last_tag = tags.gather(1, (mask.sum(dim=1, keepdim=True) - 1)).squeeze(1)  # (batch,)
        return start[tags[:, 0]] + (emitted * real).sum(1) + (moved * real[:, 1:]).sum(1) + end[last_tag]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions, end = self._allowed_scores()
        alpha = start + emissions[:, 0]  # (batch, tags): log-sum of all path scores ending in each tag
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)  # padded steps carry alpha over
        return torch.logsumexp(alpha + end, dim=1)

    def _check_inputs(self, emissions: torch.Tensor, mask: torch.Tensor, tags: torch.Tensor | None = None) -> None:
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be (batch, steps, {self.num_tags}), got {tuple(emissions.shape)}")
        if mask.dtype != torch.bool or mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask must be a bool tensor of shape {tuple(emissions.shape[:2])}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        if mask.device.type == "meta":  # the device-placement tests: shapes only, no values to check
            return
        if mask.shape[1] == 0 or not mask[:, 0].all():
            raise ValueError("every row needs at least one unpadded step (mask[:, 0] must be True)")
        if (mask[:, 1:] & ~mask[:, :-1]).any():
            raise ValueError("padding must come at the end of each row (mask True ... True False ... False)")
        if tags is not None and ((tags < 0).any() or (tags >= self.num_tags).any()):
            raise ValueError(f"tags must lie in [0, {self.num_tags}) at unpadded positions")


def iob2_transition_mask(labels: Sequence[str]) -> TransitionMask:
    """IOB2 rules: I-X only after B-X or I-X, so a sentence cannot start with I-X; any tag may end one."""
    parsed = [_split_label(label, "BI") for label in labels]
    starts = [prefix != "I" for prefix, _ in parsed]
    transitions = [[prefix_to != "I" or (type_from == type_to) for prefix_to, type_to in parsed]
                   for _, type_from in parsed]
    return _as_mask(starts, transitions, [True] * len(parsed))


def bioes_transition_mask(labels: Sequence[str]) -> TransitionMask:
    """BIOES rules: a chunk is S-X alone or B-X I-X* E-X; between chunks only O."""
    parsed = [_split_label(label, "BIES") for label in labels]
    inside = [prefix in "BI" for prefix, _ in parsed]  # a chunk is open after this tag
    starts = [prefix in "OBS" for prefix, _ in parsed]
    ends = [not is_inside for is_inside in inside]
    transitions = [
        [(prefix_to in "IE" and type_to == type_from) if is_inside else prefix_to in "OBS"
         for prefix_to, type_to in parsed]
        for is_inside, (_, type_from) in zip(inside, parsed)
    ]
    return _as_mask(starts, transitions, ends)


def _split_label(label: str, prefixes: str) -> tuple[str, str | None]:
    """'B-PER' -> ('B', 'PER'), 'O' -> ('O', None)."""
    if label == "O":
        return "O", None
    if len(label) > 2 and label[0] in prefixes and label[1] == "-":
        return label[0], label[2:]
    expected = " / ".join(["O"] + [f"{prefix}-TYPE" for prefix in prefixes])
    raise ValueError(f"label {label!r} does not have the form {expected}")


def _as_mask(starts: list[bool], transitions: list[list[bool]], ends: list[bool]) -> TransitionMask:
    return TransitionMask(
        start=torch.tensor(starts, dtype=torch.bool),
        transitions=torch.tensor(transitions, dtype=torch.bool).reshape(len(starts), len(starts)),
        end=torch.tensor(ends, dtype=torch.bool),
    )
