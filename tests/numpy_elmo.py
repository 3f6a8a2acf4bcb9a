"""An independent float64 NumPy reference of the ELMo biLM, written from ELMO_FORMAT.md §3-4 only.

It reads the weights in their *file* (TensorFlow) layout — a dict `name -> array` with the hdf5
dataset names — so it shares no code and no layout conversion with `elmo_bench.elmo`.
One sentence at a time, no batching, no padding: everything that batching could get wrong is absent.

    layers, state = bilm_sentence(weights, options_json, ["The", "cat"], state=None)
    layers: L+1 arrays of shape (n+2, 2P), with <S>/</S> rows;  state[d][l] = (h, c)
"""
from __future__ import annotations

import numpy as np

C = 50  # max_characters_per_token


def char_ids(token: str) -> np.ndarray:
    """§3: raw ids [258, bytes[:48], 259, 260...] (boundaries [258, 256|257, 259, ...]), then +1."""
    if token == "<S>":
        raw = [258, 256, 259]
    elif token == "</S>":
        raw = [258, 257, 259]
    else:
        raw = [258, *token.encode("utf-8")[: C - 2], 259]
    raw = raw + [260] * (C - len(raw))
    return np.asarray(raw) + 1


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def token_vectors(w: dict, options: dict, tokens: list[str]) -> np.ndarray:
    """§4.2-4.5: (N,) tokens -> (N, P) context-independent representations."""
    cnn = options["char_cnn"]
    table = np.concatenate([np.zeros((1, w["char_embed"].shape[1])), w["char_embed"]])  # row 0 = padding
    e = table[np.stack([char_ids(t) for t in tokens])]  # (N, C, E)
    activation = np.tanh if cnn.get("activation", "relu") == "tanh" else relu
    pooled = []
    for i, (width, _) in enumerate(cnn["filters"]):
        kernel = w[f"CNN/W_cnn_{i}"][0]  # (width, E, n)
        windows = [
            np.einsum("nse,sek->nk", e[:, t : t + width], kernel) for t in range(C - width + 1)
        ]  # y[t, k] = b[k] + sum_s sum_c e[t+s, c] W[0, s, c, k]
        y = np.stack(windows, axis=1) + w[f"CNN/b_cnn_{i}"]  # (N, C-w+1, n)
        pooled.append(activation(y.max(axis=1)))  # max over all windows, then the activation
    x = np.concatenate(pooled, axis=-1)  # (N, F)
    for k in range(cnn["n_highway"]):
        g = sigmoid(x @ w[f"CNN_high_{k}/W_carry"] + w[f"CNN_high_{k}/b_carry"])
        h = relu(x @ w[f"CNN_high_{k}/W_transform"] + w[f"CNN_high_{k}/b_transform"])
        x = g * h + (1.0 - g) * x
    return x @ w["CNN_proj/W_proj"] + w["CNN_proj/b_proj"]


def lstm_layer(w: dict, options: dict, d: int, l: int, inputs: np.ndarray, state):
    """§4.6: one direction, one layer; inputs (n, P) in this direction's time order."""
    lstm = options["lstm"]
    prefix = f"RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell"
    kernel, bias, projection = w[f"{prefix}/W_0"], w[f"{prefix}/B"], w[f"{prefix}/W_P_0"]
    cell_clip, proj_clip = lstm.get("cell_clip"), lstm.get("proj_clip")
    h, c = state
    outputs = []
    for u in inputs:
        z = np.concatenate([u, h]) @ kernel + bias
        i, j, f, o = np.split(z, 4)  # TF order
        c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
        if cell_clip:
            c = np.clip(c, -cell_clip, cell_clip)
        h = (sigmoid(o) * np.tanh(c)) @ projection
        if proj_clip:
            h = np.clip(h, -proj_clip, proj_clip)
        outputs.append(h)
    return np.array(outputs).reshape(len(inputs), -1), (h, c)


def zero_state(options: dict):
    lstm = options["lstm"]
    zero = (np.zeros(lstm["projection_dim"]), np.zeros(lstm["dim"]))
    return [[zero] * lstm["n_layers"] for _ in range(2)]


def bilm_sentence(w: dict, options: dict, tokens: list[str], state=None):
    """§4.1-4.7 for one sentence (without boundaries). Returns L+1 layers (n+2, 2P) and final state.

    An empty sentence has no boundaries: zero-length layers, state unchanged.
    """
    lstm = options["lstm"]
    state = state if state is not None else zero_state(options)
    n_layers, width = lstm["n_layers"], 2 * lstm["projection_dim"]
    if not tokens:
        return [np.zeros((0, width)) for _ in range(n_layers + 1)], state
    tok = token_vectors(w, options, ["<S>", *tokens, "</S>"])
    halves = [[], []]  # halves[d][l], in original time order
    final = [[None] * n_layers for _ in range(2)]
    for d in range(2):
        x = tok if d == 0 else tok[::-1]
        for l in range(n_layers):
            out, final[d][l] = lstm_layer(w, options, d, l, x, state[d][l])
            if lstm.get("use_skip_connections") and l >= 1:
                out = out + x
            halves[d].append(out if d == 0 else out[::-1])
            x = out
    layers = [np.concatenate([tok, tok], axis=-1)]
    layers += [np.concatenate([halves[0][l], halves[1][l]], axis=-1) for l in range(n_layers)]
    return layers, final


def random_weights(options: dict, seed: int) -> dict:
    """Random float32 weights in the hdf5 layout of §1.2 for `options`."""
    rng = np.random.default_rng(seed)
    cnn, lstm = options["char_cnn"], options["lstm"]
    E, P, D = cnn["embedding"]["dim"], lstm["projection_dim"], lstm["dim"]
    F = sum(n for _, n in cnn["filters"])

    def normal(shape, scale):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {"char_embed": normal((261, E), 1.0)}
    for i, (width, n) in enumerate(cnn["filters"]):
        w[f"CNN/W_cnn_{i}"] = normal((1, width, E, n), 0.5)
        w[f"CNN/b_cnn_{i}"] = normal((n,), 0.3)
    for k in range(cnn["n_highway"]):
        w[f"CNN_high_{k}/W_carry"] = normal((F, F), 0.5 / np.sqrt(F))
        w[f"CNN_high_{k}/b_carry"] = normal((F,), 1.0)
        w[f"CNN_high_{k}/W_transform"] = normal((F, F), 1.0 / np.sqrt(F))
        w[f"CNN_high_{k}/b_transform"] = normal((F,), 0.3)
    w["CNN_proj/W_proj"] = normal((F, P), 1.5 / np.sqrt(F))
    w["CNN_proj/b_proj"] = normal((P,), 0.3)
    for d in range(2):
        for l in range(lstm["n_layers"]):
            prefix = f"RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell"
            w[f"{prefix}/W_0"] = normal((2 * P, 4 * D), 1.5 / np.sqrt(P))
            w[f"{prefix}/B"] = normal((4 * D,), 0.5)
            w[f"{prefix}/W_P_0"] = normal((D, P), 2.0 / np.sqrt(D))
    return w


def as_float64(weights: dict) -> dict:
    return {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
