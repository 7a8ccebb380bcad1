"""Compile CasADi Functions to C once and keep the shared library in a disk cache.

The generated C code of a Function is compiled with ``cc -O3 -shared`` and loaded back with
``casadi.external``. The library is stored under ``$XDG_CACHE_HOME/control_dl/jit`` (default
``~/.cache/control_dl/jit``; ``$CONTROL_DL_CACHE`` overrides the root), named by a SHA-256 hash of
the Function's serialized form and the CasADi version, so a second run compiles nothing. Nothing is
ever written into the working directory. Without a C compiler (or when compilation fails) the
Function is returned unchanged and a warning says so: results are the same, only slower.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import casadi as ca

logger = logging.getLogger(__name__)

#: Flags passed to the C compiler.
CFLAGS = ("-O3", "-shared", "-fPIC")


def cache_dir() -> Path:
    """Root of control_dl's disk cache.

    Returns
    -------
    Path
        ``$CONTROL_DL_CACHE``, else ``$XDG_CACHE_HOME/control_dl``, else ``~/.cache/control_dl``.
    """
    if os.environ.get("CONTROL_DL_CACHE"):
        return Path(os.environ["CONTROL_DL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "control_dl"


def c_compiler() -> str | None:
    """The C compiler used for JIT compilation (``$CC``, else cc/gcc/clang on PATH), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def function_key(f: ca.Function) -> str:
    """Cache key: SHA-256 of the serialized Function, the CasADi version and the compiler flags.

    Parameters
    ----------
    f : casadi.Function
        Function to hash.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256(f.serialize().encode())
    digest.update(f"{ca.__version__} {' '.join(CFLAGS)}".encode())
    return digest.hexdigest()


def compile_function(f: ca.Function, with_jacobian: bool = False) -> tuple[ca.Function, dict[str, float | bool | str]]:
    """Return a compiled copy of ``f`` from the disk cache, compiling it on a miss.

    Parameters
    ----------
    f : casadi.Function
        Function to compile. The copy evaluates numerically and has no derivatives, unless
        ``with_jacobian``: then ``f.jacobian()`` is compiled into the same library (as ``jac_<name>``)
        and the loaded Function has first derivatives (enough for IPOPT with a quasi-Newton Hessian).
    with_jacobian : bool
        Also compile the Jacobian.

    Returns
    -------
    tuple
        ``(function, info)``: the compiled Function (or ``f`` itself on fallback) and
        ``info = {"compiled": bool, "cache_hit": bool, "compile_time": seconds, "path": str}``.
    """
    start = time.perf_counter()
    directory = cache_dir() / "jit"
    suffix = "_jac" if with_jacobian else ""
    library = directory / f"{f.name()}{suffix}_{function_key(f)}.so"
    if library.exists():
        return _load(f, library, start, cache_hit=True)
    compiler = c_compiler()
    if compiler is None:
        warnings.warn(
            "no C compiler found (set $CC): CasADi Functions are evaluated uncompiled, which is slower",
            RuntimeWarning,
            stacklevel=2,
        )
        return f, {"compiled": False, "cache_hit": False, "compile_time": 0.0, "path": ""}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            source = os.path.join(tmp, f"{f.name()}.c")
            generator = ca.CodeGenerator(f"{f.name()}.c", {"with_header": False})
            generator.add(f)
            if with_jacobian:
                generator.add(f.jacobian())
            generator.generate(tmp + os.sep)
            partial = os.path.join(tmp, "lib.so")
            subprocess.run(
                [compiler, *CFLAGS, source, "-o", partial, "-lm"],
                check=True,
                capture_output=True,
                text=True,
            )
            os.replace(partial, library)  # atomic: concurrent runs never load half a file
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        warnings.warn(f"JIT compilation failed, evaluating uncompiled: {detail[:300]}", RuntimeWarning, stacklevel=2)
        return f, {"compiled": False, "cache_hit": False, "compile_time": 0.0, "path": ""}
    return _load(f, library, start, cache_hit=False)


def compile_if(f: ca.Function, jit: bool) -> ca.Function:
    """``f`` compiled through the disk cache when ``jit`` is true, else ``f`` itself.

    Parameters
    ----------
    f : casadi.Function
        Function to compile.
    jit : bool
        Whether to compile.

    Returns
    -------
    casadi.Function
        A Function with the same inputs and outputs (``f`` on fallback, with a warning).
    """
    return compile_function(f)[0] if jit else f


def _load(f: ca.Function, library: Path, start: float, cache_hit: bool) -> tuple[ca.Function, dict]:
    try:
        compiled = ca.external(f.name(), str(library))
    except RuntimeError as exc:  # a damaged cache entry: evaluate uncompiled, say where the file is
        warnings.warn(f"cannot load the JIT library {library} ({exc}); evaluating uncompiled", RuntimeWarning, 3)
        return f, {"compiled": False, "cache_hit": False, "compile_time": 0.0, "path": ""}
    info = {"compiled": True, "cache_hit": cache_hit, "compile_time": time.perf_counter() - start, "path": str(library)}
    logger.debug("JIT %s: %s", "cache hit" if cache_hit else "compiled", library)
    return compiled, info
