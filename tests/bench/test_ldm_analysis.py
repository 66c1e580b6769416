"""bench/ldm_analysis.py: the posterior-scale sweep reports the bound's terms per c, in bits/dim, with common
random numbers (the model's own c gives the same numbers as the default), and its Markdown has a row per c."""
from __future__ import annotations

import math

import torch

from bench_scripts import load_script
from genbench.config import resolve_config
from genbench.testing import DIGITS_SPEC, contract_batch
from genbench_ldm import LatentDiffusion


def load_analysis():
    return load_script("ldm_analysis")


def test_posterior_scale_sweep_terms_in_bits_per_dim_with_common_noise():
    analysis = load_analysis()
    spec = DIGITS_SPEC
    torch.manual_seed(0)
    model = LatentDiffusion(resolve_config(LatentDiffusion, "tiny", spec, {"max_steps": 6, "ae_fraction": 0.5}), spec)
    x_train = contract_batch(spec, n=32, seed=1)
    model.train(True)
    for _ in range(6):
        model.train_step(x_train[torch.randint(0, 32, (16,))])
        model.step += 1
    model.train(False)
    x = contract_batch(spec, n=6)
    own = analysis.bound_terms_bpd(model, x, spec.dims)
    same = analysis.bound_terms_bpd(model, x, spec.dims, model.posterior_scale)
    assert own == same  # content-seeded draws: the same c gives the same numbers
    wide = analysis.bound_terms_bpd(model, x, spec.dims, 4.0)
    with torch.no_grad():
        direct = model.bound_terms(x, strata=model.config.test_vlb_strata, posterior_scale=4.0).means()
    for k in analysis.TERMS:
        assert math.isclose(wide[k], direct[k] / (spec.dims * math.log(2)), rel_tol=1e-9, abs_tol=1e-12)
    # widening q by 4 raises its entropy by d log 4 nats: E_q[log q] falls by exactly that
    d = model.latent_dims
    assert math.isclose(wide["neg_entropy"] - own["neg_entropy"],
                        -d * math.log(4.0 / model.posterior_scale) / (spec.dims * math.log(2)), rel_tol=1e-6)
    md = analysis.sweep_markdown({"posterior_scale": model.posterior_scale,
                                  "posterior_scale_sweep": [{"posterior_scale": 4.0, **wide}]})
    assert "| 4 |" in "\n".join(md) and f"{wide['total']:.4f}" in "\n".join(md)
    assert analysis.sweep_markdown({"posterior_scale_sweep": []}) == []
