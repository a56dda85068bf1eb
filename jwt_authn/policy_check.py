"""Which policy entries name nothing: a misspelt entry protects nothing, so it must not pass silently.

A requirement on ``/inv.v1.Inventory/Delet`` leaves ``Delete`` open to any valid token, and a
public entry on ``/inv.v1.Inventroy/*`` opens nothing while its author thinks it does. Two checks
share the rule below:

- ``check_policy(policy, served)`` is strict and explicit: every entry of the policy (its public,
  allow-missing and requirement entries; never gRPC's infrastructure, which it adds itself) must
  name a method of ``served`` (full method names, generated ``ServiceDescriptor``s or
  ``FileDescriptor``s, a ``_pb2`` module's ``DESCRIPTOR``). It raises ``ValueError`` at start.
- ``unserved_entries(entries, served, described=...)`` is what the adapters run by themselves,
  on by default: an entry is fine when it names a served method (or, for ``/pkg.Svc/*``, a
  served service) or a method of a service known from generated code in this process (the
  protobuf descriptor pool). An entry of a service nobody here serves or describes is taken to be
  for another transport or server (a Policy shared by gRPC and HTTP, where HTTP serves a subset)
  and is only reported when its service is a near miss of a known one (``Inventroy``).

Usage:
    check_policy(config.policy, [inventory_pb2.DESCRIPTOR])  # raises ValueError: policy: ...
    for problem in unserved_entries(policy_entries(policy), served={"/inv.v1.Inventory/Delete"}):
        log.error("%s", problem)
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jwt_authn.config import PUBLIC_GRPC_INFRA_METHODS, Policy

# protobuf is not a dependency of jwt_authn: a server without generated code has no descriptors,
# and only the probes of its handler lookup speak.
_descriptor_pool: Any
try:
    from google.protobuf import descriptor_pool as _descriptor_pool
except ImportError:  # pragma: no cover - protobuf comes with any generated code
    _descriptor_pool = None

__all__ = [
    "MAX_PROBE_ROUNDS",
    "PROBE_SENTINEL",
    "ServedCheck",
    "UnservedEntry",
    "check_policy",
    "described_methods",
    "method_names",
    "policy_entries",
    "probe_targets",
    "report_unserved",
    "served_by_probes",
    "service_of",
    "unserved_entries",
]

#: How alike two service names must be (difflib's ratio) for an unknown one to count as a typo of a
#: known one rather than a service of another transport: "Inventroy"/"Inventory" scores 0.9 or so.
_NEAR_MISS_SERVICE = 0.8
#: How alike a method name must be to be offered as the closest real method.
_CLOSEST_METHOD = 0.6

#: Describes a service: its full method names, or None when this process has no descriptor for it.
Describer = Callable[[str], tuple[str, ...] | None]


@dataclass(frozen=True, slots=True)
class UnservedEntry:
    """A policy entry that names nothing served, and the closest real method or service, if any."""

    entry: str
    closest: str | None

    def __str__(self) -> str:
        hint = f"; did you mean {self.closest!r}?" if self.closest else ""
        return f"policy entry {self.entry!r} names no method this server serves{hint}"


def service_of(method: str) -> str:
    """``"pkg.Svc"`` of ``"/pkg.Svc/Method"`` or ``"/pkg.Svc/*"``."""
    return method[1:].split("/", 1)[0]


def policy_entries(policy: Policy) -> tuple[str, ...]:
    """The entries the embedder wrote: public, allow-missing and requirement names. Never gRPC's
    infrastructure, even written out (``(*PUBLIC_GRPC_INFRA_METHODS, ...)``): a server serves one
    reflection version or none, and the entries for the others are there on purpose."""
    written = (*policy.public_methods, *policy.allow_missing_methods, *policy.requirements)
    return tuple(entry for entry in dict.fromkeys(written) if entry not in PUBLIC_GRPC_INFRA_METHODS)


def described_methods(service: str) -> tuple[str, ...] | None:
    """The full method names of ``service`` in the default protobuf descriptor pool (what the
    generated ``_pb2`` modules imported in this process registered), or None when the pool does
    not know it (or protobuf is not installed)."""
    if _descriptor_pool is None:
        return None
    try:
        descriptor = _descriptor_pool.Default().FindServiceByName(service)
    except KeyError:
        return None
    return tuple(f"/{service}/{method.name}" for method in descriptor.methods)


def method_names(served: Iterable[Any]) -> tuple[str, ...]:
    """Full method names of ``served``: names as they are, ``ServiceDescriptor``s and
    ``FileDescriptor``s (a ``_pb2`` module's ``DESCRIPTOR``) expanded to their methods."""
    names: list[str] = []
    for item in served:
        if isinstance(item, str):
            names.append(item)
        elif hasattr(item, "services_by_name"):  # a FileDescriptor
            names.extend(method_names(item.services_by_name.values()))
        elif hasattr(item, "methods") and hasattr(item, "full_name"):  # a ServiceDescriptor
            names.extend(f"/{item.full_name}/{method.name}" for method in item.methods)
        else:
            raise TypeError(
                "served: expected method names or protobuf service/file descriptors,"
                f" not {type(item).__name__}"
            )
    return tuple(names)


def _closest(name: str, candidates: Iterable[str], cutoff: float) -> str | None:
    # Case differences count as near misses too ("delete" for "Delete"): compare folded names.
    by_folded = {candidate.casefold(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[matches[0]] if matches else None


def unserved_entries(
    entries: Iterable[str], served: Iterable[str], *, described: Describer = described_methods
) -> tuple[UnservedEntry, ...]:
    """The entries that name nothing, by the rule in the module docstring."""
    entries = tuple(entries)
    known: dict[str, set[str]] = {}  # service -> its methods served or described
    for method in served:
        known.setdefault(service_of(method), set()).add(method)
    for service in {service_of(entry) for entry in entries}:
        described_here = described(service)
        if described_here is not None:
            known.setdefault(service, set()).update(described_here)
    problems: list[UnservedEntry] = []
    for entry in entries:
        service = service_of(entry)
        methods = known.get(service)
        if methods is not None:
            if entry.endswith("/*") or entry in methods:
                continue
            problems.append(UnservedEntry(entry, _closest(entry, methods, _CLOSEST_METHOD)))
            continue
        near = _closest(service, known, _NEAR_MISS_SERVICE)
        if near is None:
            continue  # another transport's or server's service: nothing here to compare it with
        if entry.endswith("/*"):
            problems.append(UnservedEntry(entry, f"/{near}/*"))
        else:
            problems.append(UnservedEntry(entry, _closest(entry, known[near], 0.0)))
    return tuple(problems)


def check_policy(policy: Policy, served: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless every entry of ``policy`` names a method of ``served`` (method
    names, ``ServiceDescriptor``s, ``FileDescriptor``s). Strict: ``served`` is all there is."""
    names = method_names(served)
    by_service: dict[str, set[str]] = {}
    for name in names:
        by_service.setdefault(service_of(name), set()).add(name)
    problems: list[UnservedEntry] = []
    for entry in policy_entries(policy):
        service_methods = by_service.get(service_of(entry), set())
        if (entry.endswith("/*") and service_methods) or entry in service_methods:
            continue
        if entry.endswith("/*"):
            near = _closest(service_of(entry), by_service, 0.0)
            problems.append(UnservedEntry(entry, f"/{near}/*" if near else None))
        else:
            problems.append(UnservedEntry(entry, _closest(entry, names, 0.0)))
    if problems:
        raise ValueError("policy: " + "; ".join(str(problem) for problem in problems))


#: A name no server serves, probed first: a server whose lookup answers it ignores the name it is
#: asked about (a threaded ``grpc.server`` answers with the handler of the pre-registered method
#: being called, whatever the name), so its other answers prove nothing.
PROBE_SENTINEL = "/jwt_authn.policy_check.NoSuchService/NoSuchMethod"


def probe_targets(policy: Policy) -> tuple[str, ...]:
    """The names a gRPC adapter asks its server's handler lookup about: the sentinel, then each
    exact entry (a ``/pkg.Svc/*`` entry is judged by its service, which a lookup cannot list)."""
    return (PROBE_SENTINEL, *(entry for entry in policy_entries(policy) if not entry.endswith("/*")))


def served_by_probes(current: str | None, answers: dict[str, bool]) -> tuple[str, ...]:
    """The methods the probes prove served: the call being made (``current``, when the server has
    a handler for it) and, unless the sentinel was answered, every probed name that was."""
    proven = [current] if current is not None else []
    if not answers.get(PROBE_SENTINEL, False):
        proven.extend(name for name, found in answers.items() if found)
    return tuple(proven)


#: Most calls a gRPC adapter probes on while its server's lookup answers any name: each such round
#: proves only the call being made, so a later call through a generic handler may prove more.
MAX_PROBE_ROUNDS = 64


class ServedCheck:
    """The gRPC adapters' automatic check, on by default: the first call probes the server's own
    handler lookup about each entry and logs one error per entry that names nothing. While the
    lookup answers any name (pre-registered methods on a threaded server), later calls probe again,
    at most ``MAX_PROBE_ROUNDS`` of them; an entry is never reported twice."""

    def __init__(self, policy: Policy, log: logging.Logger, where: str) -> None:
        self._policy, self._log, self._where = policy, log, where
        self.targets = probe_targets(policy)
        self._reported: set[str] = set()
        self._seen: set[str] = set()
        self._rounds_left = MAX_PROBE_ROUNDS
        #: Whether the next call should probe.
        self.pending = True

    def record(self, current: str | None, answers: dict[str, bool]) -> None:
        """Log what one round of probes (``answers``, made during a call of ``current``) proves."""
        if current is not None:
            self._seen.add(current)
        served = (*self._seen, *served_by_probes(None, answers))
        for problem in unserved_entries(policy_entries(self._policy), served):
            if problem.entry not in self._reported:
                self._reported.add(problem.entry)
                self._log.error(_REPORT, problem, self._where)
        self._rounds_left -= 1
        self.pending = bool(answers.get(PROBE_SENTINEL)) and self._rounds_left > 0


_REPORT = (
    "%s (checked by %s; until it is fixed, the method it meant is decided by the other entries,"
    " and Policy(require_listed=True) would refuse every method no entry names)"
)


def report_unserved(policy: Policy, served: Iterable[str], log: logging.Logger, where: str) -> None:
    """Log one error per entry of ``policy`` that names nothing ``served`` (``where``: the adapter)."""
    for problem in unserved_entries(policy_entries(policy), served):
        log.error(_REPORT, problem, where)
