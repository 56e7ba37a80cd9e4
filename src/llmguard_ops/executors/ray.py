"""The ``ray`` executor: each check a Ray task, placed by the resources it declares.

What runs where: the driver (``llmguard run``) loads the suite, models and datasets once,
pickles that session with cloudpickle and puts it in the object store once; each check
is one task (``num_cpus``, ``num_gpus``, ``memory`` and custom resources from
:func:`~llmguard_ops.executors.resources_for`) that fetches the session, checks its
sha256 against the driver's, and runs the check through the same
:meth:`~llmguard_ops.runner.Session.run_check` as the local executor (timeout, redaction,
gate). The driver gates nothing itself: it applies waivers, writes the artifacts the
worker sent back into the run folder and records where each check ran.

Fail closed: a task is never retried (``max_retries=0``), so a worker killed by a signal,
``os._exit`` or Ray's memory monitor is an ERROR of that check; a worker whose check
timed out (its thread abandoned, as locally) leaves right after replying; a request no node can satisfy is an ERROR
naming the resource, found before submission; a run that outlives every timeout is
cancelled and its unfinished checks are Timeout ERRORs. A latency check takes every CPU
of one node (pinned there) while it times, so no other check shares the machine.

``ray`` is imported only when this executor is opened.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LlmguardError
from . import Resources, resources_for

if TYPE_CHECKING:
    from ..results import CheckResult
    from ..runner import ProgressFn, Session
    from ..suite import CheckConfig

#: Seconds to wait for a TCP connection to the cluster before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0
#: Extra seconds, per check, the whole run may take beyond the sum of its timeouts
#: (worker start, fetching the session, scheduling) before unfinished checks are cancelled.
SLACK_PER_CHECK_S = 30.0

_SESSIONS: dict[str, Session] = {}  # in a worker: the unpacked session, by digest


# -- connecting ------------------------------------------------------------------------


def _probe(address: str) -> None:
    """Fail fast (one line) when ``host:port`` does not accept a connection.

    ``ray.init`` retries an unreachable GCS for minutes; a run should exit 2 at once.
    ``auto`` and ``local`` are left to Ray.
    """
    target = address.removeprefix("ray://").rpartition("@")[2]  # user:token@host:port → host:port
    if target in ("auto", "local") or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            return
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise LlmguardError(f"--ray-address {address}: the Ray cluster is unreachable ({reason})") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "…") if len(text) > 300 else text or type(exc).__name__


class RayExecutor:
    """Checks as Ray tasks on a cluster (or on a local Ray started for the run).

    When this process is already connected to Ray (``ray.init`` called by the caller),
    that connection is used as it is and ``address`` is ignored.
    """

    def __init__(self, address: str | None) -> None:
        import ray

        self.address = address
        self._owns = False
        if not ray.is_initialized():
            if address:
                _probe(address)
            from ..cli import QUIET_ENV

            # workers of a remote cluster do not inherit this process's environment
            quiet = {name: os.environ.get(name, value) for name, value in QUIET_ENV.items()}
            try:
                ray.init(
                    address=address or None,
                    runtime_env={"env_vars": quiet},
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                    configure_logging=False,
                )
            except Exception as exc:
                where = f"--ray-address {address}" if address else "ray"
                raise LlmguardError(f"{where}: cannot start or join a Ray cluster: {_one_line(exc)}") from None
            self._owns = True

    # -- the cluster ----------------------------------------------------------------

    @staticmethod
    def nodes() -> list[dict[str, Any]]:
        """The alive nodes: id, ip and total resources (CPU, GPU, memory, custom)."""
        import ray

        out = []
        for node in ray.nodes():  # type: ignore[no-untyped-call]
            if not node.get("Alive"):
                continue
            total = {k: float(v) for k, v in node.get("Resources", {}).items()}
            out.append({"node_id": node["NodeID"], "ip": node.get("NodeManagerAddress"), "resources": total})
        return sorted(out, key=lambda n: n["node_id"])

    def describe(self) -> dict[str, Any]:
        import ray

        nodes = []
        for node in self.nodes():
            total = node["resources"]
            custom = {k: v for k, v in total.items() if not _builtin_resource(k)}
            nodes.append(
                {
                    "node_id": node["node_id"],
                    "ip": node["ip"],
                    "cpus": total.get("CPU", 0.0),
                    "gpus": total.get("GPU", 0.0),
                    "memory": int(total.get("memory", 0.0)),
                    **({"custom": custom} if custom else {}),
                }
            )
        return {
            "name": "ray",
            "ray_version": ray.__version__,
            "address": self.address or ("local" if self._owns else "connected"),
            "nodes": len(nodes),
            "cpus": sum(n["cpus"] for n in nodes),
            "gpus": sum(n["gpus"] for n in nodes),
            "node_list": nodes,
        }

    # -- running ----------------------------------------------------------------------

    def run(self, session: Session, configs: Sequence[CheckConfig], progress: ProgressFn | None) -> list[CheckResult]:
        import ray

        payload, digest = pack_session(session)
        shipped = ray.put(payload)  # once: every task reads the same object
        task = ray.remote(max_retries=0, retry_exceptions=False)(_run_on_worker)
        nodes = self.nodes()
        results: dict[str, CheckResult] = {}
        pending: dict[Any, _Submitted] = {}
        for config in configs:
            if progress:
                progress("check_start", {"id": config.id, "uses": config.uses})
            plan = plan_task(session, config, nodes)
            if isinstance(plan, str):
                failed = error_result(session, config, "Unschedulable", plan, 0.0)
                results[config.id] = self._finish(session, failed, progress)
                continue
            ref = task.options(**plan.options).remote(shipped, digest, config.id)
            pending[ref] = _Submitted(config, time.perf_counter(), plan.requested)
        deadline = time.monotonic() + sum(s.timeout(session) + SLACK_PER_CHECK_S for s in pending.values())
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done, _ = ray.wait(list(pending), num_returns=1, timeout=min(left, 1.0))
            for ref in done:
                sub = pending.pop(ref)
                results[sub.config.id] = self._collect(session, sub, ref)
                if progress:
                    progress("check_end", {"id": sub.config.id, "result": results[sub.config.id]})
        for ref, sub in pending.items():  # past every timeout: cancel, fail closed
            ray.cancel(ref, force=True)
            message = (
                f"the Ray task did not return within the run's allowance of {deadline - sub.submitted:.0f}s "
                "(cancelled; is the cluster saturated or the node gone?)"
            )
            failed = error_result(session, sub.config, "Timeout", message, time.perf_counter() - sub.submitted)
            results[sub.config.id] = self._finish(session, failed, progress)
        return [results[c.id] for c in configs]

    @staticmethod
    def _finish(session: Session, result: CheckResult, progress: ProgressFn | None) -> CheckResult:
        session._apply_waiver(result)
        if progress:
            progress("check_end", {"id": result.id, "result": result})
        return result

    def _collect(self, session: Session, sub: _Submitted, ref: Any) -> CheckResult:
        import ray

        from ..results import CheckResult

        duration = time.perf_counter() - sub.submitted
        try:
            reply = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            result = error_result(session, sub.config, "Timeout", "the Ray task was cancelled", duration)
        except ray.exceptions.OutOfMemoryError as exc:
            result = error_result(session, sub.config, "OutOfMemory", _one_line(exc), duration)
        except ray.exceptions.RayTaskError as exc:  # the host's own wrapper failed: still a result
            result = error_result(session, sub.config, "RayTaskError", _one_line(exc.cause or exc), duration)
        except ray.exceptions.RayError as exc:  # the worker (or its node) died mid-check
            message = f"the check's Ray worker ended without a result: {type(exc).__name__}: {_one_line(exc)}"
            result = error_result(session, sub.config, "WorkerDied", message, duration)
        else:
            if "error" in reply:
                result = error_result(session, sub.config, reply["error"]["type"], reply["error"]["message"], duration)
            else:
                result = CheckResult.model_validate(reply["result"])
                result.placement = {**reply["placement"], "requested": sub.requested}
                _write_files(session.out_dir, reply["files"])
                for key, n in reply["calls"].items():
                    session.cache.calls[key] += n
        session._apply_waiver(result)
        return result

    def close(self) -> None:
        import ray

        if self._owns and ray.is_initialized():
            ray.shutdown()


@dataclass
class _Submitted:
    config: CheckConfig
    submitted: float
    requested: dict[str, Any]

    def timeout(self, session: Session) -> float:
        return self.config.timeout or session.loaded.suite.policy.default_timeout


# -- placement ---------------------------------------------------------------------------


def _builtin_resource(name: str) -> bool:
    return name in ("CPU", "GPU", "memory", "object_store_memory") or name.startswith("node:")


@dataclass
class TaskPlan:
    """How one check is submitted: Ray's task options and what the report records."""

    options: dict[str, Any]
    requested: dict[str, Any]


def _wants(res: Resources) -> dict[str, float]:
    want = {"CPU": 1.0 if res.cpus is None else float(res.cpus), "GPU": float(res.gpus or 0.0)}
    if res.memory:
        want["memory"] = float(res.memory)
    want.update({k: float(v) for k, v in res.custom.items()})
    return want


def _fits(want: Mapping[str, float], total: Mapping[str, float]) -> bool:
    return all(total.get(k, 0.0) >= v for k, v in want.items() if v > 0)


def _shortfall(want: Mapping[str, float], nodes: Sequence[Mapping[str, Any]]) -> str:
    def amount_of(key: str, value: float) -> str:
        if key == "memory":
            return f"{value / 2**30:.3g} GiB of memory"
        return f"{value:g} {key}" if key in ("CPU", "GPU") else f"{value:g} of resource '{key}'"

    for key, amount in want.items():
        if amount <= 0:
            continue
        best = max((n["resources"].get(key, 0.0) for n in nodes), default=0.0)
        if best < amount:
            return (
                f"unschedulable: the check requests {amount_of(key, amount)}, and no node of the Ray cluster has "
                f"that much (the most on one node: {amount_of(key, best)}); lower resources: in the suite or add "
                "such a node"
            )
    return (
        f"unschedulable: no single node of the Ray cluster has all of {dict(want)} at once "
        "(each resource exists, on different nodes)"
    )


def plan_task(session: Session, config: CheckConfig, nodes: Sequence[Mapping[str, Any]]) -> TaskPlan | str:
    """The task options of one check, or why no node of the cluster can run it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    res = resources_for(session, config)
    want = _wants(res)
    fitting = [n for n in nodes if _fits(want, n["resources"])]
    if not fitting:
        return _shortfall(want, nodes)
    options: dict[str, Any] = {"num_cpus": want["CPU"], "num_gpus": want["GPU"]}
    if "memory" in want:
        options["memory"] = want["memory"]
    custom = {k: v for k, v in want.items() if k not in ("CPU", "GPU", "memory")}
    if custom:
        options["resources"] = custom
    requested: dict[str, Any] = {**res.describe(), "cpus": want["CPU"], "gpus": want["GPU"]}
    if res.exclusive:  # a check that times: pinned to one node, which it does not share
        # the node with the most CPUs that fits; the task takes all of them while it times
        node = max(fitting, key=lambda n: (n["resources"].get("CPU", 0.0), n["node_id"]))
        options["num_cpus"] = node["resources"].get("CPU", 0.0)
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node["node_id"], soft=False)
        requested = {**requested, "cpus": options["num_cpus"], "exclusive_node": node["node_id"]}
    return TaskPlan(options=options, requested=requested)


# -- the shipped session --------------------------------------------------------------


def pack_session(session: Session) -> tuple[bytes, str]:
    """The session as cloudpickle bytes and their sha256 (what a worker checks on arrival).

        The plugin manager travels as the list of registered plugins (modules by reference,
        objects by value) and is rebuilt in the worker; the prediction cache, the waiver book
        and the output folder stay with the driver. A worker unpacks it once and keeps it for the
    run's later tasks (its own prediction cache, shared by the checks it runs).
    """
    from ray import cloudpickle

    host = session.host
    for name, module in list(sys.modules.items()):
        if name.startswith("llmguard_suite_") and module is not None:  # suite-local model code
            cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
    state = {
        "loaded": session.loaded,
        "models": session.models,
        "datasets": session.datasets,
        "plugins": list(host.pm.list_name_plugin()),
        "provenance": dict(host.provenance),
        "failures": list(host.failures),
        "started_at": session.started_at,
        "run_id": session.run_id,
        "redactor": session.redactor,
        "backend": session.cache.backend,  # an inference actor pool (RayInference) or None
    }
    data: bytes = cloudpickle.dumps(state)  # type: ignore[no-untyped-call]
    return data, hashlib.sha256(data).hexdigest()


def unpack_session(payload: bytes, digest: str, out_dir: Path) -> Session:
    """The driver's session rebuilt in a worker, after its sha256 matched ``digest``."""
    import pluggy
    from ray import cloudpickle

    from .. import hookspecs
    from ..evidence.waivers import WaiverBook
    from ..plugins import PluginHost
    from ..runner import Session

    actual = hashlib.sha256(payload).hexdigest()
    if actual != digest:
        raise LlmguardError(f"the session arrived with sha256 {actual[:12]}…, not the driver's {digest[:12]}…")
    state = cloudpickle.loads(payload)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    for name, plugin in state["plugins"]:
        dist, version = state["provenance"].get(name, (None, None))
        host.register(plugin, name=name, dist=dist, version=version)
    host.failures[:0] = state["failures"]
    session = Session(
        loaded=state["loaded"],
        host=host,
        models=state["models"],
        datasets=state["datasets"],
        out_dir=out_dir,
        started_at=state["started_at"],
        run_id=state["run_id"],
        waivers=WaiverBook([]),  # the driver applies the run's waivers
        redactor=state["redactor"],
    )
    session.cache.backend = state.get("backend")
    return session


def _session_in_worker(payload: bytes, digest: str) -> Session:
    """The run's session in this worker: unpacked once per worker process and run."""
    actual = hashlib.sha256(payload).hexdigest()
    if actual != digest:  # checked on every arrival, not only the first
        raise LlmguardError(f"the session arrived with sha256 {actual[:12]}…, not the driver's {digest[:12]}…")
    session = _SESSIONS.get(digest)
    if session is None:
        session = unpack_session(payload, digest, Path(tempfile.mkdtemp(prefix="llmguard-worker-")))
        # the inference backend (policy.inference_actors) travelled with the session: this
        # worker's checks send their model calls to the run's actor pool
        _SESSIONS.clear()  # one run at a time per worker: an earlier run's session goes
        _SESSIONS[digest] = session
    return session


def _leave_soon() -> None:
    """End this worker shortly after it replies: a check it timed out is still running in
    an abandoned thread, which must not slow or corrupt the next task given this process."""
    import threading

    threading.Timer(1.0, os._exit, args=(0,)).start()


def _run_on_worker(payload: bytes, digest: str, check_id: str) -> dict[str, Any]:
    """One check in a Ray worker: the result, where it ran, the files it wrote."""
    import ray

    try:
        session = _session_in_worker(payload, digest)
        before = dict(session.cache.calls)
        result = session.run_check(session.loaded.suite.check(check_id))
    except Exception as exc:
        return {"error": {"type": type(exc).__name__, "message": f"{_one_line(exc)}\n{traceback.format_exc()}"}}
    if result.error is not None and result.error.type == "Timeout":
        _leave_soon()
    context = ray.get_runtime_context()
    placement = {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
        "pid": os.getpid(),
        "assigned": {k: float(v) for k, v in context.get_assigned_resources().items()},  # type: ignore[no-untyped-call]
    }
    folder = session.out_dir / "artifacts" / check_id
    files = {
        p.relative_to(session.out_dir).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
    calls = {key: n - before.get(key, 0) for key, n in session.cache.calls.items() if n != before.get(key, 0)}
    return {"result": result.model_dump(mode="json"), "placement": placement, "files": files, "calls": calls}


def _write_files(out_dir: Path, files: Mapping[str, bytes]) -> None:
    from ..report import atomic_write

    root = out_dir.resolve()
    for rel, data in files.items():
        target = (out_dir / rel).resolve()
        if root not in target.parents:  # a worker names paths inside the run folder only
            continue
        atomic_write(target, data)


def error_result(session: Session, config: CheckConfig, kind: str, message: str, duration: float) -> CheckResult:
    """An ERROR of ``config`` decided by the driver (the check produced nothing)."""
    from ..context import derive_seed
    from ..results import CheckResult, ErrorInfo, Status

    text, _, trace = message.partition("\n")
    seed = derive_seed(session.loaded.suite.seed, config.id)
    result = CheckResult(
        **session.result_fields(config, session.loaded.raw_params(config.id), seed),
        status=Status.ERROR,
        error=ErrorInfo(type=kind, message=text, traceback=trace or None),
        duration_s=round(duration, 6),
    )
    if session.redactor:
        result = CheckResult.model_validate(session.redactor.data(result.model_dump(mode="json")))
    return result


def open_ray(options: Mapping[str, Any]) -> RayExecutor:
    """The ``open`` of the ``ray`` executor: ``options["address"]`` or a local Ray."""
    address = options.get("address") or os.environ.get("RAY_ADDRESS") or None
    return RayExecutor(str(address) if address else None)
