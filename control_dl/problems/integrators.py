r"""Time-stepping schemes for x' = f(x, θ(t)).

An integrator advances one step of size h given θ at its nodes t_k + c h. Euler is exactly the
ResNet block x_{k+1} = x_k + h f(x_k, θ_k).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import spec_error

#: f(x, θ) with θ already unpacked: the field bound to its parameters.
Rhs = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Integrator:
    """An explicit one-step scheme.

    Attributes
    ----------
    name : str
        ``"euler"`` or ``"rk4"``.
    order : int
        Global convergence order.
    nodes : tuple of float
        Distinct fractions c of the step at which θ is needed.
    """

    name: str
    order: int
    nodes: tuple[float, ...]

    def step(self, rhs: Rhs, x: Any, thetas: Sequence[Any], h: float, ops: Any) -> Any:
        """Advance x by one step.

        Euler: x + h f(x, θ(t_k)). RK4, the classical four-stage Runge-Kutta method (Hairer,
        Nørsett & Wanner, *Solving ODEs I*, 1993, §II.1): k1 = f(x, θ(t_k)),
        k2 = f(x + h/2 k1, θ(t_k + h/2)), k3 = f(x + h/2 k2, θ(t_k + h/2)), k4 = f(x + h k3, θ(t_k + h)),
        x + h/6 (k1 + 2 k2 + 2 k3 + k4).

        Parameters
        ----------
        rhs : callable
            ``rhs(x, theta)`` evaluating f, ``d × S`` → ``d × S``.
        x : array
            Current state, ``d × S``.
        thetas : sequence of array
            θ at each of :attr:`nodes` (flat, p entries each): one for Euler, three for RK4.
        h : float
            Step size h = T/N (time units of the horizon).
        ops : Ops
            Backend namespace (the updates x + c h k are ``ops.add_scaled``: one pass in torch).

        Returns
        -------
        array
            The state after one step, ``d × S``.
        """
        if self.name == "euler":
            return ops.add_scaled(x, h, rhs(x, thetas[0]))
        k1 = rhs(x, thetas[0])
        k2 = rhs(ops.add_scaled(x, 0.5 * h, k1), thetas[1])
        k3 = rhs(ops.add_scaled(x, 0.5 * h, k2), thetas[1])
        k4 = rhs(ops.add_scaled(x, h, k3), thetas[2])
        return ops.add_scaled(x, h / 6.0, k1 + 2.0 * k2 + 2.0 * k3 + k4)


INTEGRATORS = {
    "euler": Integrator("euler", 1, (0.0,)),
    "rk4": Integrator("rk4", 4, (0.0, 0.5, 1.0)),
}


def get_integrator(name: str) -> Integrator:
    """Return the integrator called ``name``.

    Parameters
    ----------
    name : {"euler", "rk4"}
        Scheme name.

    Returns
    -------
    Integrator
        The scheme.

    Raises
    ------
    SpecError
        ``name`` is not one of them.
    """
    if name not in INTEGRATORS:
        raise spec_error("integrator", name, f"must be one of {sorted(INTEGRATORS)}")
    return INTEGRATORS[name]
