"""The learned noise schedule of variational diffusion models (Kingma et al. 2021, Appendix H and I.2).

    gamma_eta(t) = gamma_0 + (gamma_1 - gamma_0) (g~(t) - g~(0)) / (g~(1) - g~(0))        (eq. 59)
    g~(t)        = l_1(t) + l_3(phi(l_2(l_1(t))))                                         (Appendix H)

l_1 (one output), l_2 (``features`` outputs) and l_3 (one output, divided by ``features`` as in the authors'
code) are linear layers whose weights are kept positive (absolute values), phi is the sigmoid, so g~ and
gamma are strictly increasing in t: SNR(t) = exp(-gamma(t)) falls monotonically (Sec. 3.2).  The end points
are separate parameters: gamma(0) = gamma_0 (the decoder's noise level) and gamma(1) = gamma_0 +
softplus(gamma_1 - gamma_0) (equal to gamma_1 to within exp(-(gamma_1 - gamma_0)), and never below gamma_0).

Training (Sec. 5.3 / Appendix I.2): the continuous-time bound depends on the schedule only through its end
points (Sec. 5.1), so the end points get the bound's gradient, and the shape parameters eta get the gradient
of the second moment of the diffusion-loss estimate, d/d eta E[L^2] = E[2 L dL/d eta] (which, E[L] being
invariant to eta, is the gradient of its variance).  One backward pass does both: the gradient that reaches
the shape through (gamma, gamma') of image i is multiplied by 2 L_i (``ScheduleDraw.minimise_variance_of``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``scale`` (read at backward time)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


@dataclass
class ScheduleDraw:
    """gamma(t_i) and gamma'(t_i) for a batch of times, whose gradient into the schedule's *shape* parameters
    is multiplied per row by a factor that starts at 0 (shape frozen) until ``minimise_variance_of(L)`` sets
    it to 2 L_i: then the shape receives the gradient of sum_i L_i^2 wherever the end points and the network
    receive that of sum_i L_i."""

    gamma: Tensor
    dgamma: Tensor
    scale: Tensor

    def minimise_variance_of(self, loss: Tensor) -> None:
        """Route the gradient of ``loss`` (B,) squared, instead of ``loss``, into the schedule's shape."""
        self.scale.copy_(2.0 * loss.detach().to(self.scale.dtype).reshape(self.scale.shape))


class MonotoneGamma(nn.Module):
    """gamma_eta(t): a strictly increasing map [0, 1] -> [gamma(0), gamma(1)] with learned end points."""

    def __init__(self, gamma_min: float, gamma_max: float, features: int = 1024, learned: bool = True) -> None:
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError(f"the schedule needs gamma_max > gamma_min, got {gamma_max} <= {gamma_min}")
        if features < 1:
            raise ValueError(f"the schedule network needs features >= 1, got {features}")
        self.features = features
        self.gamma_0 = nn.Parameter(torch.tensor(float(gamma_min)))
        self.gamma_1 = nn.Parameter(torch.tensor(float(gamma_max)))
        self.w1 = nn.Parameter(torch.tensor(1.0))
        self.b1 = nn.Parameter(torch.tensor(0.0))
        self.w2 = nn.Parameter(torch.randn(features))
        self.b2 = nn.Parameter(torch.randn(features))
        self.w3 = nn.Parameter(torch.randn(features))
        if not learned:  # the fixed schedule linear in log-SNR between the end points (the paper's baseline)
            with torch.no_grad():
                self.w3.zero_()
            self.requires_grad_(False)

    def shape_parameters(self) -> list[nn.Parameter]:
        """eta: every parameter except the end points."""
        return [self.w1, self.b1, self.w2, self.b2, self.w3]

    def endpoints(self) -> tuple[Tensor, Tensor]:
        """(gamma(0), gamma(1)) as differentiable scalars; gamma(1) > gamma(0) always."""
        return self.gamma_0, self.gamma_0 + F.softplus(self.gamma_1 - self.gamma_0)

    def _tilde(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """g~(t) and dg~/dt (Appendix H) for a float tensor t of any shape."""
        w1, w2, w3 = self.w1.abs(), self.w2.abs(), self.w3.abs() / self.features
        h = w1 * t + self.b1
        sig = torch.sigmoid(h[..., None] * w2 + self.b2)
        g = h + (sig * w3).sum(-1)
        dg = w1 * (1.0 + (sig * (1 - sig) * w2 * w3).sum(-1))
        return g, dg

    def shape(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The normalised shape s(t) = (g~(t) - g~(0)) / (g~(1) - g~(0)) in [0, 1] and s'(t) > 0."""
        ends, _ = self._tilde(torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device))
        g, dg = self._tilde(t)
        span = ends[1] - ends[0]
        return (g - ends[0]) / span, dg / span

    def forward(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(gamma(t), gamma'(t)) (eq. 59 and its derivative)."""
        s, ds = self.shape(t)
        g0, g1 = self.endpoints()
        return g0 + (g1 - g0) * s, (g1 - g0) * ds

    def gamma(self, t: Tensor) -> Tensor:
        """gamma(t) alone (for samplers)."""
        return self.forward(t)[0]

    def draw(self, t: Tensor) -> ScheduleDraw:
        """(gamma, gamma') at ``t`` for a training step whose shape gradient is set by
        ``ScheduleDraw.minimise_variance_of`` (Appendix I.2)."""
        s, ds = self.shape(t)
        scale = torch.zeros_like(s).detach()
        s, ds = _ScaleGrad.apply(s, scale), _ScaleGrad.apply(ds, scale)
        g0, g1 = self.endpoints()
        return ScheduleDraw(g0 + (g1 - g0) * s, (g1 - g0) * ds, scale)
