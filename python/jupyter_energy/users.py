"""A user's share of the machine's energy, and what a user may ask about others.

Shared by the server extension (the "you" figure of one Jupyter server) and the JupyterHub
service (one row per hub user).  energyd attributes energy to ``user:UID`` (every process of
that uid, by CPU-time share: an estimate) and answers the machine's total over the same interval
in the same reply; emissions and cost of a user are the machine's, measured over that interval,
times the user's share.
"""

from __future__ import annotations

import os
import pwd
from typing import Any, Dict, Optional

from .client import EnergydClient, EnergydError

ESTIMATE_LABEL = ("estimate: this user's CPU-time share of the machine's {kind} total "
                  "(energyd attribution, method {method})")


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _times(t0: float, t1: float) -> Dict[str, str]:
    return {"from": f"{t0:.6f}", "to": f"{t1:.6f}"}


def _times_share(value: Any, share: Optional[float]) -> Optional[float]:
    if value is None or share is None:
        return None
    return float(value) * share


def user_share(answer: Dict[str, Any], uid: int) -> Dict[str, Any]:
    """The machine and user figures from energyd's ``energy?scope=user:UID`` answer."""
    host = answer.get("host") or {}
    scope = answer.get("scope") or {}
    share = scope.get("share")
    measured = bool(host.get("measured"))
    method = scope.get("method") or "cpu-time-share"
    return {
        "from": answer.get("from"),
        "to": answer.get("to"),
        "resolution_s": scope.get("resolution_s", answer.get("resolution_s")),
        "machine": {
            "joules": host.get("joules"),
            "measured": measured,
            "coverage": host.get("coverage"),
            "emissions_g": host.get("emissions_g"),
            "cost": host.get("cost"),
            "currency": host.get("currency"),
        },
        "user": {
            "uid": uid,
            "name": user_name(uid),
            "scope": f"user:{uid}",
            "joules": scope.get("joules"),
            "share": share,
            "emissions_g": _times_share(host.get("emissions_g"), share),
            "cost": _times_share(host.get("cost"), share),
            "currency": host.get("currency"),
            "measured": False,
            "method": method,
            "idle_joules": scope.get("idle_joules"),
            "label": ESTIMATE_LABEL.format(kind="measured" if measured else "estimated",
                                           method=method),
        },
    }


def user_energy_query(uid: int, t0: float, t1: float) -> Dict[str, str]:
    """The query of energyd's ``energy`` for ``user:UID`` over [t0, t1]."""
    return {"scope": f"user:{uid}", **_times(t0, t1)}



def _uid_of(name_or_uid: str) -> Optional[int]:
    if name_or_uid.isdigit():
        return int(name_or_uid)
    try:
        return pwd.getpwnam(name_or_uid).pw_uid
    except KeyError:
        return None


def _pid_owner(pid: str) -> Optional[int]:
    try:
        return os.stat(f"/proc/{int(pid)}").st_uid
    except (OSError, ValueError):
        return None


def foreign_scope(client: EnergydClient, scope: str, uid: int) -> Optional[str]:
    """Why a caller running as ``uid`` may not see ``scope`` (None when it may).

    A user sees the machine total and their own scopes: their uid, their processes, their
    kernels' watches; another user's share is theirs alone.
    """
    kind, _, arg = scope.partition(":")
    if kind == "user":
        if _uid_of(arg) != uid:
            return "another user's energy is not shown; ask for your own: scope=user:%d" % uid
        return None
    if kind == "pid":
        if _pid_owner(arg) != uid:
            return "pid %s is not a running process of yours" % arg[:16]
        return None
    if kind == "kernel":
        try:
            watches = client.get("watch").get("watches") or []
        except EnergydError as exc:
            return "cannot check who owns the watch: %s" % exc.error
        matches = [w for w in watches if str(w.get("id")) == arg or w.get("label") == arg]
        if not matches or any(w.get("owner_uid") != uid for w in matches):
            return "no watch of yours is called %s" % arg[:80]
        return None
    if kind == "cgroup":
        return "cgroup scopes are shown to root only"
    return None  # malformed: energyd answers its own 400
