"""Reading a suite file into a validated :class:`~llmguard_ops.suite.Suite`.

Every error names ``file:line:col key.path`` and, for near misses, suggests the
closest valid name. Check parameters are validated against the parameter model of
the installed check, so third-party checks get the same quality of errors.
"""

from __future__ import annotations

import copy
import hashlib
import json
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, create_model

from .errors import SuiteError, did_you_mean
from .registry import Registry
from .suite import CheckConfig, GateBound, Suite
from .yamlsource import Path_, SourceMap, format_path, load_yaml, position_of_offset


class SuiteErrors(SuiteError):
    """Several located problems; printed one per line."""

    def __init__(self, errors: Sequence[SuiteError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, line=first.line, column=first.column, key=first.key)

    def format(self) -> str:
        return "\n".join(e.format() for e in getattr(self, "errors", [])) or super().format()


@dataclass
class LoadedSuite:
    """A validated suite with where it came from."""

    suite: Suite
    path: Path
    text: str
    sha256: str
    source: SourceMap
    raw: dict[str, Any]
    params: dict[str, BaseModel] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def raw_params(self, check_id: str) -> dict[str, Any]:
        """The check's ``with:`` as written (``${ENV}`` unresolved, so no secret leaks)."""
        for check in self.raw.get("checks", []):
            if isinstance(check, dict) and check.get("id") == check_id:
                return copy.deepcopy(check.get("with") or {})
        return {}


_TYPE_WORDS = {
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "list_type": "expected a list",
}


def _message(err: Mapping[str, Any], model: type[BaseModel] | None, loc: Path_) -> tuple[str, bool]:
    """One readable message for a pydantic error, and whether to point at the key."""
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _fields_at(model, loc[:-1])
        hint = did_you_mean(key, known) if known else ""
        return f"unknown key '{key}'{hint}", True
    if kind == "missing":
        return f"missing required key '{loc[-1]}'", True
    got = err.get("input")
    shown = f", got {got!r}" if not isinstance(got, dict | list) and got is not None else ""
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind] + shown, False
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Input should be"):
        msg = "expected" + msg[len("Input should be") :] + shown
    else:
        msg = msg[0].lower() + msg[1:]
    return msg, False


def _fields_at(model: type[BaseModel] | None, loc: Path_) -> list[str]:
    """Field names (by alias) of the model found at ``loc`` under ``model``, best effort."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            current = _inner_model(current, item=True)
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        match = next((f for n, f in fields.items() if (f.alias or n) == part), None)
        current = _inner_model(match.annotation if match else None)
    fields = getattr(current, "model_fields", None) or {}
    return [(f.alias or n) for n, f in fields.items()]


def _inner_model(annotation: Any, item: bool = False) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _located(exc: ValidationError, smap: SourceMap, model: type[BaseModel], prefix: Path_ = ()) -> SuiteErrors:
    errors = []
    for err in exc.errors():
        loc: Path_ = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg, at_key = _message(err, model, loc)
        errors.append(smap.error((*prefix, *loc), msg, prefer_key=at_key))
    return SuiteErrors(errors)


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """``checks.quality.gate.accuracy.min=0.9`` → (path parts, YAML-parsed value)."""
    if "=" not in text:
        raise SuiteError(f"--set expects PATH=VALUE, got {text!r}", file="--set")
    path, _, value = text.partition("=")
    parts: list[str | int] = []
    for piece in path.strip().replace("]", "").replace("[", ".").split("."):
        if piece == "":
            continue
        parts.append(int(piece) if piece.isdigit() else piece)
    if not parts:
        raise SuiteError(f"--set has an empty path: {text!r}", file="--set")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except (yaml.YAMLError, ValueError, OverflowError):  # e.g. an int of 5000 digits
        parsed = value
    return parts, parsed


def apply_overrides(data: dict[str, Any], raw: dict[str, Any], smap: SourceMap, overrides: Iterable[str]) -> None:
    """Apply ``--set`` overrides to both trees; a check may be addressed by its id."""
    for text in overrides:
        parts, value = parse_override(text)
        for tree in (data, raw):
            node: Any = tree
            resolved: list[str | int] = []
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                if isinstance(node, list):
                    if isinstance(part, str):  # checks.<id>
                        idx = next((j for j, c in enumerate(node) if isinstance(c, dict) and c.get("id") == part), None)
                        if idx is None:
                            ids = [str(c.get("id")) for c in node if isinstance(c, dict)]
                            raise SuiteError(
                                f"no item with id '{part}'{did_you_mean(part, ids)}",
                                file="--set",
                                key=format_path(tuple(resolved)),
                            )
                        part = idx
                    if part >= len(node):
                        raise SuiteError(f"index {part} out of range", file="--set", key=format_path(tuple(resolved)))
                elif not isinstance(node, dict):
                    raise SuiteError(
                        f"cannot set below a {type(node).__name__}", file="--set", key=format_path(tuple(resolved))
                    )
                resolved.append(part)
                if last:
                    node[part] = copy.deepcopy(value)
                else:
                    if isinstance(node, dict) and part not in node:
                        node[part] = {}
                    node = node[part]
            smap.overridden.add(tuple(resolved))


MAX_SUITE_BYTES = 1 << 20
"""Largest suite file read (1 MiB); real suites are a few kilobytes."""


def read_suite_text(path: Path) -> str:
    """The suite's text: a regular file of at most :data:`MAX_SUITE_BYTES`, valid UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SuiteError("suite file not found", file=str(path)) from None
    except OSError as exc:
        raise SuiteError(f"cannot read suite file: {exc.strerror or exc}", file=str(path)) from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO or /dev/zero would block or never end
        raise SuiteError("the suite is not a regular file", file=str(path))
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SUITE_BYTES + 1)
    except OSError as exc:
        raise SuiteError(f"cannot read suite file: {exc.strerror or exc}", file=str(path)) from None
    if len(data) > MAX_SUITE_BYTES:
        line, column = position_of_offset(data, MAX_SUITE_BYTES)
        raise SuiteError(
            f"the suite file is larger than {MAX_SUITE_BYTES} bytes (the limit is reached here)",
            file=str(path),
            line=line,
            column=column,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = position_of_offset(data, exc.start)
        raise SuiteError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})", file=str(path), line=line, column=column
        ) from None
    return text.removeprefix("\ufeff")


def load_suite(
    path: str | Path,
    registry: Registry,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> LoadedSuite:
    """Read, interpolate, override and validate a suite and every check's parameters.

    Raises :class:`SuiteError` (possibly :class:`SuiteErrors`) with positions.
    """
    path = Path(path)
    text = read_suite_text(path)
    try:
        data, raw, smap = load_yaml(text, str(path), env)
    except yaml.YAMLError as exc:  # e.g. a !!python tag refused by the safe loader
        mark = getattr(exc, "problem_mark", None)
        raise SuiteError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
            file=str(path),
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    if not isinstance(data, dict):
        raise SuiteError(
            "a suite must be a mapping with apiVersion, name, models, datasets, checks",
            file=str(path),
            line=1,
            column=1,
        )
    apply_overrides(data, raw, smap, overrides)
    _precheck(data, smap)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        # report the checks' own problems too: every error at once, not one stage at a time
        errors = _located(exc, smap, Suite).errors + _raw_check_errors(data, registry, smap)
        raise SuiteErrors(errors) from None

    loaded = LoadedSuite(
        suite=suite,
        path=path.resolve(),
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        source=smap,
        raw=raw,
        overrides=list(overrides),
    )
    errors = []
    context = {"models": set(suite.models), "datasets": set(suite.datasets)}
    for i, check in enumerate(suite.checks):
        params, found = _check_entry(("checks", i), check.uses, check.with_, list(check.gate), registry, smap, context)
        errors += found
        if params is not None:
            loaded.params[check.id] = params
    for name, model in suite.models.items():
        if model.loader not in registry.model_loaders:
            errors.append(
                smap.error(
                    ("models", name, "loader"),
                    f"unknown model loader '{model.loader}'{did_you_mean(model.loader, registry.model_loaders)}",
                )
            )
    executor = suite.policy.executor
    if executor not in registry.executors:
        listed = ", ".join(sorted(registry.executors)) or "none"
        errors.append(
            smap.error(
                ("policy", "executor"),
                f"unknown executor '{executor}'{did_you_mean(executor, registry.executors)}; installed: {listed}",
            )
        )
    if errors:
        raise SuiteErrors(errors)
    return loaded


def validate_check(
    entry: Mapping[str, Any], registry: Registry, suite: Suite, *, where: str
) -> tuple[CheckConfig, BaseModel]:
    """One check entry (``id``, ``uses``, ``with``, ``gate``, ``severity``) validated exactly
    as the checks of a suite file are, against ``suite``'s models and datasets.

    For checks built outside a suite file (the pytest plugin's ``llmguard_check``): errors
    are the loader's own, named ``where`` and located by key path
    (``llmguard_check('quality') with.model: unknown model 'candiate'; did you mean ...``).
    Raises :class:`SuiteErrors`.
    """
    smap = SourceMap(file=where)
    try:
        config = CheckConfig.model_validate(dict(entry))
    except ValidationError as exc:
        raise _located(exc, smap, CheckConfig) from None
    context = {"models": set(suite.models), "datasets": set(suite.datasets)}
    params, errors = _check_entry((), config.uses, config.with_, list(config.gate), registry, smap, context)
    if errors or params is None:
        raise SuiteErrors(errors)
    return config, params


def _check_entry(
    at: Path_,
    uses: str,
    with_: dict[str, Any],
    metrics: list[str],
    registry: Registry,
    smap: SourceMap,
    context: dict[str, set[str]],
) -> tuple[BaseModel | None, list[SuiteError]]:
    """The parameters of the check at ``at`` (``("checks", i)`` in a suite file) validated
    against its check, and every problem found."""
    definition = registry.checks.get(uses)
    if definition is None:
        failure = registry.failure_for_check(uses)
        if failure is not None:
            msg = f"check '{uses}' is unavailable: {failure.line()}"
        else:
            msg = f"unknown check '{uses}'{did_you_mean(uses, registry.checks)}"
            if not did_you_mean(uses, registry.checks):
                msg += "; run 'llmguard checks' to list the installed ones"
        return None, [smap.error((*at, "uses"), msg)]
    errors: list[SuiteError] = []
    params: BaseModel | None = None
    try:
        params = definition.params.model_validate(with_, context=context)
    except ValidationError as exc:
        errors.extend(_located(exc, smap, definition.params, (*at, "with")).errors)
    else:
        errors.extend(_default_refs(definition.params, with_, context, smap, at))
    for metric in metrics:
        if not definition.declares(metric):
            names = [m for m in definition.metric_names() if "*" not in m]
            errors.append(
                smap.error(
                    (*at, "gate", metric),
                    f"check '{uses}' has no metric '{metric}'{did_you_mean(metric, names)}",
                    prefer_key=True,
                )
            )
    return params, errors


def _default_refs(
    model: type[BaseModel], with_: dict[str, Any], context: dict[str, set[str]], smap: SourceMap, at: Path_
) -> list[SuiteError]:
    """A parameter left at its default that names a model or dataset the suite lacks.

    ``dataset: DatasetRef = "current"`` is not validated by pydantic when omitted, so a
    suite whose datasets do not include ``current`` would pass ``validate`` and ERROR at
    run time. Suites that define no model (dataset) at all are left alone.
    """
    errors = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in with_ or name in with_ or not isinstance(info.default, str):
            continue
        kind: str = next(
            (
                str(m.func.llmguard_ref)
                for m in info.metadata
                if getattr(getattr(m, "func", None), "llmguard_ref", None)
            ),
            "",
        )
        names = context.get(kind)
        # a suite with no models (datasets) at all feeds its checks otherwise, e.g. logged
        # predictions in canary.compare: only a suite that has some can lack the default
        if names and info.default not in names:
            listed = ", ".join(sorted(names)) or "none"
            errors.append(
                smap.error(
                    (*at, "with") if "with" in _keys_at(smap, at) else at,
                    f"'{key}' defaults to {kind[:-1]} '{info.default}', which the suite does not define; "
                    f"set with.{key} (the suite defines: {listed})",
                    prefer_key=True,
                )
            )
    return errors


def _keys_at(smap: SourceMap, at: Path_) -> set[str]:
    return {str(k[len(at)]) for k in smap.keys if len(k) == len(at) + 1 and k[: len(at)] == tuple(at)}


def _raw_check_errors(data: dict[str, Any], registry: Registry, smap: SourceMap) -> list[SuiteError]:
    """Check-level problems of a suite whose top level failed validation (best effort)."""
    checks = data.get("checks")
    if not isinstance(checks, list):
        return []
    models, datasets = data.get("models"), data.get("datasets")
    context = {
        "models": set(models) if isinstance(models, dict) else set(),
        "datasets": set(datasets) if isinstance(datasets, dict) else set(),
    }
    errors: list[SuiteError] = []
    for i, entry in enumerate(checks):
        if not isinstance(entry, dict) or not isinstance(entry.get("uses"), str):
            continue
        with_ = entry.get("with", {})
        gate = entry.get("gate", {})
        if not isinstance(with_, dict) or not isinstance(gate, dict):
            continue
        errors += _check_entry(("checks", i), entry["uses"], with_, [str(g) for g in gate], registry, smap, context)[1]
    return errors


def _precheck(data: dict[str, Any], smap: SourceMap) -> None:
    """Errors pydantic would place badly: duplicate check ids."""
    checks = data.get("checks")
    if isinstance(checks, list):
        seen: dict[Any, int] = {}
        for i, check in enumerate(checks):
            if isinstance(check, dict) and isinstance(check.get("id"), str):
                if check["id"] in seen:
                    raise smap.error(
                        ("checks", i, "id"),
                        f"duplicate check id '{check['id']}' (first at checks[{seen[check['id']]}])",
                    )
                seen[check["id"]] = i


def suite_json_schema(registry: Registry) -> dict[str, Any]:
    """JSON Schema of the suite format with each installed check's parameters.

    All models are rendered together by pydantic's ``models_json_schema``, which gives
    two parameter models of the same class name (``GenerationParams`` of two checks, or
    of two plugins) distinct ``$defs`` names instead of letting one overwrite the other.
    """
    from pydantic.json_schema import models_json_schema

    names: list[str] = []
    models: list[Any] = []
    for name, definition in sorted(registry.checks.items()):
        fields: dict[str, Any] = {
            "uses": (Any, ...),
            "with_": (definition.params, None),
            "gate": (dict[str, GateBound], None),
        }
        names.append(name)
        models.append(create_model("Check_" + name.replace(".", "_"), __base__=CheckConfig, **fields))
    refs, rendered = models_json_schema(
        [(Suite, "validation"), *((m, "validation") for m in models)],
        by_alias=True,
        ref_template="#/$defs/{model}",
    )
    defs: dict[str, Any] = rendered.get("$defs", {})
    suite_key = refs[(Suite, "validation")]["$ref"].rsplit("/", 1)[-1]
    base: dict[str, Any] = defs.pop(suite_key)
    items = []
    for name, model in zip(names, models, strict=True):
        key = refs[(model, "validation")]["$ref"].rsplit("/", 1)[-1]
        schema = defs.pop(key)
        definition = registry.checks[name]
        schema["properties"]["uses"] = {"const": name, "description": definition.summary}
        schema["properties"]["with"] = schema["properties"].pop("with_", schema["properties"].get("with"))
        schema["properties"]["gate"] = {
            "type": "object",
            "description": "Metric name → bounds. Metrics: " + ", ".join(definition.metric_names()),
            "additionalProperties": {"$ref": f"#/$defs/{_def_name(defs, GateBound)}"},
            "propertyNames": {"anyOf": [{"pattern": _glob_to_regex(m)} for m in definition.metric_names()]},
        }
        items.append(schema)
    if items:
        base["properties"]["checks"]["items"] = {"oneOf": items}
    base["$defs"] = defs
    base["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    base["title"] = "llmguard suite (apiVersion llmguard/v1)"
    json.dumps(base)  # must be serialisable
    return base


def _def_name(defs: dict[str, Any], model: type[BaseModel]) -> str:
    """The ``$defs`` key pydantic gave ``model`` (its name, or a qualified one on a clash)."""
    if model.__name__ in defs:
        return model.__name__
    return next(k for k in defs if k.endswith(model.__name__))


def _glob_to_regex(pattern: str) -> str:
    import fnmatch

    return fnmatch.translate(pattern).replace("\\Z", "$").replace("(?s:", "^(?:")
