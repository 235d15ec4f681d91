"""The sampling contract's inputs, drawn from a seed: the seeded generator (the browser
page's serving/web/app.js implements the same, so a seed draws the same picture in both)
and the feed every runtime takes. numpy only.
"""

from __future__ import annotations

import numpy as np

if __package__:  # imported as part of the serving package
    from serving.vae_cli import SampleError
else:  # run from the folder that holds sample.py
    from vae_cli import SampleError


COMPONENT_DRAW = "component_draw"

CONTRACT = ("noise", "temperature", "label", COMPONENT_DRAW)
"""The sampling contract's inputs in order; a decoder takes the first two and those of the
others its model has (`export.endpoints`)."""



def decoder_feed(input_names, noise: np.ndarray, labels: np.ndarray | None = None,
                 temperature: float = 1.0, component_draw: np.ndarray | None = None
                 ) -> dict:
    """The sampling contract's inputs by name, as every runtime takes them (those of
    `input_names`): noise float32 [N, latent_dim], temperature [N], a conditional
    decoder's label int64 [N] and a mixture prior's component_draw float32 [N]."""
    n = len(noise)
    values = {"noise": noise.astype(np.float32),
              "temperature": np.full(n, temperature, np.float32),
              "label": None if labels is None else np.asarray(labels, np.int64),
              COMPONENT_DRAW: (None if component_draw is None
                               else np.asarray(component_draw, np.float32))}
    missing = [name for name in input_names if values.get(name) is None]
    if missing:
        raise SampleError(f"the decoder also takes {', '.join(missing)}")
    return {name: values[name] for name in input_names}



def component_draws(input_names, n: int, seed: int, one_line: bool = False
                    ) -> np.ndarray | None:
    """n seeded uniforms in [0, 1) for a decoder's `component_draw`, from stream 2 of the
    seed; one draw for a whole interpolated line (`one_line`), so that it stays in one
    component. None for a decoder without that input."""
    if COMPONENT_DRAW not in input_names:
        return None
    return np.resize(seeded_uniform(seed, 2, 1 if one_line else n).astype(np.float32), n)



def _lowbias32(x: np.ndarray) -> np.ndarray:
    """The lowbias32 integer hash (C. Wellons) of uint32 values, wrapping at 2³²."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))



def seeded_uniform(seed: int, stream: int, count: int) -> np.ndarray:
    """`count` uniforms in (0, 1), float64: u_i = (h(i ⊕ key) + ½) / 2³², where h is
    lowbias32 and key = h(h(seed mod 2³²) ⊕ stream). The browser page computes the very
    same numbers (serving/web/app.js), so a seed draws the same picture in both."""
    with np.errstate(over="ignore"):
        key = _lowbias32(_lowbias32(np.uint32(seed % 2**32)) ^ np.uint32(stream))
        bits = _lowbias32(np.arange(count, dtype=np.uint32) ^ key)
    return (bits.astype(np.float64) + 0.5) / 2.0**32



def seeded_normal(seed: int, count: int) -> np.ndarray:
    """`count` standard normals, float64, by Box-Muller from streams 0 and 1."""
    radius = np.sqrt(-2.0 * np.log(seeded_uniform(seed, 0, count)))
    return radius * np.cos(2.0 * np.pi * seeded_uniform(seed, 1, count))



def seeded_noise(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """n seeded draws of the decoder's noise ε ~ N(0, I), float32 [n, latent_dim]: row r
    takes the normals r·latent_dim … (r + 1)·latent_dim − 1."""
    return seeded_normal(seed, n * latent_dim).reshape(n, latent_dim).astype(np.float32)



def for_every_class(z: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Every z with every label, class-major: (z tiled `classes` times, labels int64)."""
    return (np.tile(z, (classes, 1)),
            np.repeat(np.arange(classes, dtype=np.int64), len(z)))



def interpolation_noise(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """n points on the straight line between two seeded noise draws, ends included."""
    start, end = seeded_noise(2, latent_dim, seed)
    weights = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    return (1.0 - weights) * start + weights * end
