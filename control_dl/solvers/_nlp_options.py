r"""One frozen options object per NLP back-end of :class:`~control_dl.solvers.Direct`.

``Direct(nlp=...)`` translates its shared options (``max_iter``, ``tol``, ``verbose``) into each
back-end's own names; the options object of the back-end in use carries everything else and is
passed through whole (its entries override the translated defaults). An options object given for a
back-end that is not in use is a :class:`~control_dl.SpecError` (``Direct.__post_init__``), so no
option is silently dropped.

In TOML presets a nested table maps to its object (``[ipopt_options]`` → :class:`IpoptOptions`):
keys that are fields of the class fill the fields; for the CasADi plugins (IPOPT, fatrop,
sqpmethod) any other key is a further option of that plugin, kept in ``extra`` and checked by the
plugin itself when the object is built (an unknown or ill-typed name is a SpecError naming it); the
scipy back-ends accept their fields only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import casadi as ca

from .._errors import python_scalars, spec_error


@dataclass(frozen=True)
class _BackendOptions:
    """Shared behaviour: construction from a table, the plugin dict, and validation."""

    #: ``Direct.nlp`` value this object belongs to
    nlp: ClassVar[str] = ""
    #: name of the ``Direct`` field that holds it
    direct_field: ClassVar[str] = ""

    @classmethod
    def from_table(cls, value: Any) -> _BackendOptions:
        """The options object from an instance, a table (dict) or None (all defaults).

        Parameters
        ----------
        value : options object, dict or None
            What the user gave for ``Direct.<direct_field>``.

        Returns
        -------
        _BackendOptions
            An instance of ``cls``.

        Raises
        ------
        SpecError
            A value of another type, or (scipy back-ends) a key that is not a field.
        """
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise spec_error(cls.direct_field, value, f"must be a {cls.__name__} or a table of its options")
        names = [f.name for f in dataclasses.fields(cls)]
        known = {k: v for k, v in value.items() if k in names}
        unknown = {k: v for k, v in value.items() if k not in names}
        if unknown and "extra" not in names:
            key = next(iter(unknown))
            raise spec_error(
                f"{cls.direct_field}.{key}", unknown[key], f"unknown option of nlp={cls.nlp!r}; valid: {names}"
            )
        if unknown:  # further plugin options, by their own names
            known["extra"] = {**known.get("extra", {}), **unknown}
        return cls(**known)

    def __post_init__(self) -> None:
        python_scalars(self)
        if hasattr(self, "extra"):
            if not isinstance(self.extra, Mapping):
                raise spec_error(f"{self.direct_field}.extra", self.extra, "must be a table of options")
            object.__setattr__(self, "extra", dict(self.extra))

    def plugin_options(self) -> dict[str, Any]:
        """The options this object passes to its back-end: set fields (not None) and ``extra``.

        Returns
        -------
        dict
            Back-end option name → value.
        """
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        options = {k: v for k, v in options.items() if v is not None}
        options.update(getattr(self, "extra", {}))
        return options

    def is_default(self) -> bool:
        """True when nothing was set (every field at its default, no ``extra``).

        Returns
        -------
        bool
            Whether every field equals its declared default.
        """
        for f in dataclasses.fields(self):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            if getattr(self, f.name) != default:
                return False
        return True


def _probe(plugin: str, options: dict[str, Any], given: _BackendOptions, call: bool) -> None:
    """Build (and with ``call`` run) a one-variable NLP with ``options``: CasADi and the plugin
    reject unknown names and ill-typed values, which become a SpecError naming the field."""
    x = ca.MX.sym("x")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            solver = ca.nlpsol("probe", plugin, {"x": x, "f": x**2}, options)
            if call:
                solver(x0=1.0)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise spec_error(given.direct_field, given.plugin_options(), f"rejected by {plugin}: {reason}") from None


def _check_numbers(options: _BackendOptions, ints: tuple[str, ...], floats: tuple[str, ...]) -> None:
    """Positive integers and positive finite numbers (None allowed: the stated default)."""
    from .._errors import check_positive_float, check_positive_int

    for name in ints:
        if getattr(options, name) is not None:
            check_positive_int(f"{options.direct_field}.{name}", getattr(options, name))
    for name in floats:
        if getattr(options, name) is not None:
            check_positive_float(f"{options.direct_field}.{name}", getattr(options, name))


@dataclass(frozen=True)
class IpoptOptions(_BackendOptions):
    """Options of IPOPT (Wächter & Biegler 2006), used with ``Direct(nlp="ipopt")``.

    ``Direct`` sets ``max_iter``, ``tol``, ``print_level`` (from ``verbose``) and, for
    ``hessian="lbfgs"``, ``hessian_approximation="limited-memory"``; a field or ``extra`` entry set
    here overrides them. None leaves IPOPT's own default.

    Parameters
    ----------
    mu_strategy : {"monotone", "adaptive"}, optional
        Barrier parameter update (IPOPT default "monotone").
    watchdog_shortened_iter_trigger : int, optional
        Iterations with shortened steps before the watchdog tries a trial step that may raise J
        (IPOPT default 10; 0 switches the watchdog off and gives a monotone history).
    limited_memory_max_history : int, optional
        Correction pairs of the L-BFGS Hessian approximation (IPOPT default 6).
    limited_memory_initialization : {"scalar1", "scalar2", "scalar3", "scalar4", "constant"}, optional
        Initial L-BFGS matrix σI (IPOPT default "scalar1": Shanno-Phua scaling).
    nlp_scaling_method : {"gradient-based", "none", "equilibration-based"}, optional
        Scaling of objective and constraints (IPOPT default "gradient-based").
    acceptable_tol : float, optional
        Tolerance of IPOPT's "acceptable" termination (IPOPT default 1e-6).
    acceptable_iter : int, optional
        Consecutive acceptable iterations that end the solve (IPOPT default 15; 0 disables).
    extra : dict
        Any further IPOPT option by its IPOPT name, passed through unchanged (e.g.
        ``{"max_iter": 3, "bound_relax_factor": 0}``); names and types are checked by IPOPT when the
        object is built.

    Raises
    ------
    SpecError
        An option IPOPT rejects (unknown name, ill-typed or out-of-range value), named as
        ``ipopt_options`` with IPOPT's reason; found by building a one-variable NLP with them.
    """

    nlp: ClassVar[str] = "ipopt"
    direct_field: ClassVar[str] = "ipopt_options"

    mu_strategy: str | None = None
    watchdog_shortened_iter_trigger: int | None = None
    limited_memory_max_history: int | None = None
    limited_memory_initialization: str | None = None
    nlp_scaling_method: str | None = None
    acceptable_tol: float | None = None
    acceptable_iter: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.is_default():
            _probe(
                "ipopt",
                {"print_time": False, "ipopt": {"sb": "yes", **self.plugin_options()}},
                self,
                False,
            )


@dataclass(frozen=True)
class FatropOptions(_BackendOptions):
    """Options of fatrop (Vanroye et al. 2023), used with ``Direct(nlp="fatrop")``.

    ``Direct`` sets ``max_iter``, ``tol`` and ``print_level``; entries here override them.

    Parameters
    ----------
    mu_init : float, optional
        Initial barrier parameter (fatrop default 1e2).
    bound_push : float, optional
        Initial distance of the iterate from its bounds (fatrop default 1e-2).
    acceptable_iter : int, optional
        Consecutive acceptable iterations that end the solve.
    extra : dict
        Any further fatrop option by its fatrop name (checked by fatrop when the object is built).

    Raises
    ------
    SpecError
        An option fatrop rejects (found by solving a one-variable NLP with them), named as
        ``fatrop_options`` with fatrop's reason.
    """

    nlp: ClassVar[str] = "fatrop"
    direct_field: ClassVar[str] = "fatrop_options"

    mu_init: float | None = None
    bound_push: float | None = None
    acceptable_iter: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.is_default():
            options = {"print_level": 0, **self.plugin_options()}
            probe = {"structure_detection": "none", "print_time": False, "fatrop": options}
            _probe("fatrop", probe, self, True)


@dataclass(frozen=True)
class SqpmethodOptions(_BackendOptions):
    """Options of CasADi's ``sqpmethod`` (SQP with a line search), used with ``Direct(nlp="sqpmethod")``.

    ``Direct`` sets ``max_iter``, ``tol_pr = tol_du = tol``, the print switches (``verbose``) and
    the Gauss-Newton ``hess_lag``; entries here override them.

    Parameters
    ----------
    qpsol : str
        QP solver plugin (default "qrqp", CasADi's dense active-set solver).
    max_iter_ls : int, optional
        Most line-search steps per iteration (CasADi default 3).
    min_step_size : float, optional
        Smallest line-search step (CasADi default 1e-10).
    extra : dict
        Any further ``sqpmethod`` option (names in ``casadi.nlpsol_options("sqpmethod")``; checked
        when the object is built).

    Raises
    ------
    SpecError
        An option ``sqpmethod`` rejects, named as ``sqpmethod_options`` with CasADi's reason.
    """

    nlp: ClassVar[str] = "sqpmethod"
    direct_field: ClassVar[str] = "sqpmethod_options"

    qpsol: str = "qrqp"
    max_iter_ls: int | None = None
    min_step_size: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.is_default():
            _probe("sqpmethod", {"print_time": False, **self.plugin_options()}, self, False)


@dataclass(frozen=True)
class LbfgsbOptions(_BackendOptions):
    """Options of scipy's L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995), used with ``Direct(nlp="lbfgsb")``.

    ``Direct`` passes ``maxiter = max_iter``; None below means the default stated.

    Parameters
    ----------
    maxcor : int
        Correction pairs of the limited-memory matrix (30: 2.7x fewer iterations than scipy's 10
        on ring, S = 400).
    gtol : float, optional
        Stop when max_i |proj ∇J|_i ≤ gtol (default: ``Direct.tol``).
    ftol : float, optional
        Stop when the relative decrease of J is ≤ ftol (default: ``Direct.tol``).
    maxfun : int, optional
        Most evaluations of J (default 20·max_iter + 100).
    maxls : int
        Most line-search steps per iteration (scipy default 20).

    Raises
    ------
    SpecError
        ``maxcor``, ``maxfun`` or ``maxls`` not an integer >= 1, or ``gtol`` / ``ftol`` not a
        finite number > 0 (named as ``lbfgsb_options.<field>``).
    """

    nlp: ClassVar[str] = "lbfgsb"
    direct_field: ClassVar[str] = "lbfgsb_options"

    maxcor: int = 30
    gtol: float | None = None
    ftol: float | None = None
    maxfun: int | None = None
    maxls: int = 20

    def __post_init__(self) -> None:
        python_scalars(self)
        _check_numbers(self, ints=("maxcor", "maxfun", "maxls"), floats=("gtol", "ftol"))

    def scipy_options(self, max_iter: int, tol: float) -> dict[str, Any]:
        """The ``options`` of ``scipy.optimize.minimize(method="L-BFGS-B")``.

        Parameters
        ----------
        max_iter : int
            ``Direct.max_iter``.
        tol : float
            ``Direct.tol`` (default of gtol and ftol).

        Returns
        -------
        dict
            Every option scipy receives.
        """
        return {
            "maxiter": max_iter,
            "maxcor": self.maxcor,
            "gtol": tol if self.gtol is None else self.gtol,
            "ftol": tol if self.ftol is None else self.ftol,
            "maxfun": 20 * max_iter + 100 if self.maxfun is None else self.maxfun,
            "maxls": self.maxls,
        }


@dataclass(frozen=True)
class TrustNcgOptions(_BackendOptions):
    """Options of scipy's trust-ncg (Steihaug-CG trust region, Nocedal & Wright 2006, Alg. 7.2),
    used with ``Direct(nlp="trust-ncg")`` and Gauss-Newton products.

    ``Direct`` passes ``maxiter = max_iter`` and ``gtol = tol``.

    Parameters
    ----------
    initial_trust_radius : float
        Initial radius Δ₀ (scipy default 1).
    max_trust_radius : float
        Largest radius (scipy default 1000).
    eta : float
        Accept a step when the ratio actual/predicted decrease exceeds eta (scipy default 0.15).
    gtol : float, optional
        Stop when ‖∇J‖ ≤ gtol (default: ``Direct.tol``).

    Raises
    ------
    SpecError
        A radius not a finite number > 0, ``initial_trust_radius > max_trust_radius``, or ``eta``
        outside [0, 0.25) (named as ``trust_ncg_options.<field>``).
    """

    nlp: ClassVar[str] = "trust-ncg"
    direct_field: ClassVar[str] = "trust_ncg_options"

    initial_trust_radius: float = 1.0
    max_trust_radius: float = 1000.0
    eta: float = 0.15
    gtol: float | None = None

    def __post_init__(self) -> None:
        python_scalars(self)
        _check_numbers(self, ints=(), floats=("initial_trust_radius", "max_trust_radius", "gtol"))
        if not 0 <= self.eta < 0.25:
            raise spec_error(f"{self.direct_field}.eta", self.eta, "must be in [0, 0.25) (scipy's trust-region rule)")
        if self.initial_trust_radius > self.max_trust_radius:
            raise spec_error(
                f"{self.direct_field}.initial_trust_radius", self.initial_trust_radius, "must be <= max_trust_radius"
            )

    def scipy_options(self, max_iter: int, tol: float) -> dict[str, Any]:
        """The ``options`` of ``scipy.optimize.minimize(method="trust-ncg")``.

        Parameters
        ----------
        max_iter : int
            ``Direct.max_iter``.
        tol : float
            ``Direct.tol`` (default of gtol).

        Returns
        -------
        dict
            Every option scipy receives.
        """
        return {
            "maxiter": max_iter,
            "gtol": tol if self.gtol is None else self.gtol,
            "initial_trust_radius": self.initial_trust_radius,
            "max_trust_radius": self.max_trust_radius,
            "eta": self.eta,
        }


#: Direct field -> options class (one per NLP back-end)
BACKEND_OPTIONS: dict[str, type[_BackendOptions]] = {
    cls.direct_field: cls for cls in (IpoptOptions, LbfgsbOptions, TrustNcgOptions, FatropOptions, SqpmethodOptions)
}
