"""The retrieval reference (nearest training image on the known pixels): the index equals brute force over the
pool, the known sub-pixels are kept, and an image already in the pool is retrieved exactly."""
from __future__ import annotations

import torch

from genbench.tasks.masks import parse_mask
from genbench.tasks.retrieval import nearest_known, retrieval_complete


def brute_force(observed, known, pool):
    out = []
    for o, k in zip(observed, known):
        k = k.expand_as(o)
        dists = [float(((o - p)[k] ** 2).sum()) for p in pool]
        out.append(min(range(len(pool)), key=lambda j: (dists[j], j)))
    return torch.tensor(out)


def test_nearest_equals_brute_force_on_random_masks():
    g = torch.Generator().manual_seed(0)
    pool = torch.randint(0, 5, (40, 2, 4, 3), generator=g).double() / 4  # coarse levels: ties happen
    observed = torch.randint(0, 5, (17, 2, 4, 3), generator=g).double() / 4
    known = torch.rand(17, 1, 4, 3, generator=g) < 0.5
    assert torch.equal(nearest_known(observed, known, pool, chunk=5), brute_force(observed, known, pool))


def test_completion_keeps_the_known_pixels_and_finds_an_image_in_the_pool():
    g = torch.Generator().manual_seed(1)
    pool = torch.rand(30, 1, 8, 8, generator=g)
    truth = pool[[3, 17, 29]]
    known = parse_mask("bottom-half").known_mask(3, 8, 8, g)
    observed = torch.where(known, truth, torch.full_like(truth, 0.5))
    done = retrieval_complete(observed, known, pool)
    assert torch.equal(done[known.expand_as(done)], observed[known.expand_as(observed)])
    assert torch.equal(done, truth)  # continuous values: the top halves identify the images
