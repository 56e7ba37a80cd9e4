"""The pytest plugin of llmguard-ops (entry point ``pytest11: llmguard``).

pytest loads this module on every run in an environment where llmguard-ops is
installed, so it stays thin: it registers options, ini keys, markers and fixtures, and
does nothing else until it is switched on — by ``--llmguard-suite PATH``, by a
collected file matching ``llmguard_files`` (default ``llmguard*.yaml``/``.yml``), or by
a test using an ``llmguard_*`` fixture. Only then is the host imported, from
:mod:`llmguard_ops._pytest_suite`.

Each check of a suite is a test item named after its ``id`` (so ``-k quality`` runs one),
marked ``llmguard`` and ``llmguard_<severity>``. A failed blocker fails its item, a
failed ``warning``/``info`` check passes with an :class:`LlmguardGateWarning`, a check
in ERROR is a pytest error, a skipped check is skipped, and an allowed error or a waived
failure is ``xfail``. At the end the gate decides over the checks that ran, the
decision is printed, the outputs are written, and the exit status follows the CLI: a
BLOCK fails the session, and so does a REVIEW unless ``llmguard_review = pass``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# both defined beside the working half; importable from here as before
from ._pytest_shared import SUPERVISED_ENV
from ._pytest_shared import LlmguardGateWarning as LlmguardGateWarning
from .options import RUN_OPTIONS, add_pytest_options


def _telemetry_off() -> None:
    """Offline before any other plugin is imported: deepeval's own pytest plugin (entry point
    ``plugins``) sets up telemetry when it is imported unless ``DEEPEVAL_TELEMETRY_OPT_OUT``
    is ``YES``. pytest imports entry points in an order we do not choose; when deepeval's
    came first (or was named with ``-p``), its import-time setup has run, so its clients are
    switched off here as well (every deepeval capture also rereads the variable)."""
    import os
    import sys

    from .cli import _quiet_third_parties

    _quiet_third_parties()
    telemetry = sys.modules.get("deepeval.telemetry")
    if telemetry is None or os.environ.get("DEEPEVAL_TELEMETRY_OPT_OUT") != "YES":
        return
    posthog = getattr(telemetry, "posthog", None)
    if posthog is not None:
        posthog.disabled = True
    try:
        import sentry_sdk

        client = sentry_sdk.get_client()
        if client.is_active():
            client.close(timeout=0)
    except Exception:  # sentry absent or of another version: nothing was set up to close
        pass


_telemetry_off()

if TYPE_CHECKING:
    from ._pytest_suite import SuiteSession
    from .results import CheckResult

DEFAULT_FILES = ["llmguard*.yaml", "llmguard*.yml"]
REVIEW_MODES = ("fail", "pass")

MARKERS = (
    "llmguard: a check of an llmguard suite, collected as a test item",
    "llmguard_blocker: an llmguard check of severity blocker (a failure blocks promotion)",
    "llmguard_warning: an llmguard check of severity warning (a failure asks for review)",
    "llmguard_info: an llmguard check of severity info (never gates)",
    "llmguard_suite(path): the suite the llmguard fixtures load for this test (relative to the test file's folder)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmguard", "llmguard-ops: model-gating suites as tests")
    group.addoption(
        "--llmguard-suite",
        dest="llmguard_suite",
        action="append",
        default=[],
        metavar="PATH",
        help="run the checks of this suite file as test items (repeatable); without other "
        "paths on the command line, only the suite runs",
    )
    add_pytest_options(group, parser, RUN_OPTIONS)
    group.addoption(
        "--llmguard-review",
        dest="llmguard_review",
        choices=REVIEW_MODES,
        default=None,
        help="whether a REVIEW decision fails the session (default: the ini llmguard_review, else fail)",
    )
    parser.addini(
        "llmguard_files",
        type="args",
        default=DEFAULT_FILES,
        help="glob patterns of suite files collected as tests (default: llmguard*.yaml llmguard*.yml)",
    )
    parser.addini(
        "llmguard_review",
        default="fail",
        help="'fail' (default): a REVIEW decision fails the session like the CLI's exit 3; 'pass': it is reported only",
    )
    parser.addini(
        "llmguard_supervise",
        default="on",
        help="'on' (default): when pytest is started from the command line, the suite's "
        "checks run in a supervised child pytest and the session passes only if each suite's "
        "report.json of that run decides PROMOTE; 'off': run them in this process",
    )
    parser.addini(
        "llmguard_suite",
        default="",
        help="suite loaded by the llmguard fixtures when neither a marker nor "
        "--llmguard-suite names one (relative to the rootdir)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    review = config.getoption("llmguard_review") or config.getini("llmguard_review") or "fail"
    if review not in REVIEW_MODES:
        raise pytest.UsageError(f"llmguard_review must be one of {', '.join(REVIEW_MODES)}, not {review!r}")
    suites = [str(given_suite(config, s)) for s in config.getoption("llmguard_suite")]
    if suites:
        # Collect the suite files like paths given on the command line, wherever they
        # live; when no paths were given, run only the suites (not the testpaths too).
        explicit = config.args_source is pytest.Config.ArgsSource.ARGS
        config.args = [*config.args, *suites] if explicit else suites
    config.pluginmanager.register(Recorder(config, review), "llmguard-recorder")


def given_suite(config: pytest.Config, value: str) -> Path:
    """A ``--llmguard-suite`` value resolved against the invocation folder."""
    return (config.invocation_params.dir / value).resolve()


def _is_suite_file(config: pytest.Config, path: Path) -> bool:
    if path.suffix not in (".yaml", ".yml"):
        return False
    if any(given_suite(config, s) == path.resolve() for s in config.getoption("llmguard_suite")):
        return True
    patterns: list[str] = config.getini("llmguard_files")
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not _is_suite_file(parent.config, file_path):
        return None
    from ._pytest_suite import SuiteFile

    suite_file: pytest.Collector = SuiteFile.from_parent(parent, path=file_path)
    return suite_file


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # The check runs during setup; its result rides on the setup report, which pytest-xdist
    # carries from the worker to the controller (extra report attributes survive).
    report = yield
    payload = getattr(item, "llmguard_payload", None)
    if payload is not None and call.when == "setup":
        report.llmguard = payload
    # pytest shows setup errors with a full traceback; a check's error has its own text
    text = getattr(call.excinfo.value, "llmguard_text", None) if call.excinfo else None
    if isinstance(text, str) and report.failed:
        report.longrepr = text
    return report


class Recorder:
    """Collects check results from reports (local or from xdist workers) and decides at the end.

    Stays inert (no host import) unless a report carries an llmguard result.
    """

    def __init__(self, config: pytest.Config, review: str) -> None:
        self.config = config
        self.review = review
        self.payloads: list[dict[str, Any]] = []
        self.lines: list[str] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        # After deselection (-k, -m): if suite checks are to run, run them in a supervised
        # child pytest whose exit status only a written report can make 0.
        from_command_line = not config.invocation_params.plugins  # not pytest.main(plugins=...)
        if (
            os.environ.get(SUPERVISED_ENV)
            or hasattr(config, "workerinput")
            or config.option.collectonly
            or not from_command_line
            or config.getini("llmguard_supervise") == "off"
            or not any(getattr(i, "llmguard_check_item", False) for i in items)
        ):
            return
        from ._pytest_suite import supervise_session

        code, line = supervise_session(config, items, self.review)
        items.clear()
        self.lines = [line]
        pytest.exit(line, returncode=code)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, "llmguard", None)
        if payload:
            self.payloads.append(payload)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.payloads or hasattr(self.config, "workerinput"):
            return  # nothing ran, or an xdist worker: the controller decides
        from ._pytest_suite import finish_session

        fail, self.lines = finish_session(self.config, self.payloads, self.review)
        if fail and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines:
            return
        terminalreporter.write_sep("=", "llmguard")
        for line in self.lines:
            terminalreporter.write_line(line)


# -- fixtures for checks written in Python ------------------------------------------


@pytest.fixture
def llmguard_suite_path(request: pytest.FixtureRequest) -> Path:
    """The suite file the other llmguard fixtures use.

    From the nearest ``@pytest.mark.llmguard_suite(path)`` (relative to the test file's
    folder), else the first ``--llmguard-suite``, else the ini key ``llmguard_suite``
    (relative to the rootdir). Override this fixture in a ``conftest.py`` to choose
    another way.
    """
    from ._pytest_suite import suite_path_for

    return suite_path_for(request)


@pytest.fixture
def llmguard_suite(request: pytest.FixtureRequest, llmguard_suite_path: Path) -> SuiteSession:
    """The suite with its models and datasets loaded once per test process.

    Shared with the suite's collected checks (same artifacts, same prediction cache).
    """
    from ._pytest_suite import suite_session

    return suite_session(request.config, llmguard_suite_path)


@pytest.fixture
def llmguard_check(llmguard_suite: SuiteSession) -> Callable[..., CheckResult]:
    """``llmguard_check(name, *, gate=None, severity=None, id=None, **params)`` → CheckResult.

    ``name`` is a check id of the suite (its ``with:`` updated by ``params``) or an
    installed check (``performance.classification``) run with ``params``.
    """
    return llmguard_suite.check


@pytest.fixture
def llmguard_gate() -> Callable[..., None]:
    """``llmguard_gate(result, {metric: bound}, **bounds)``: assert a result passes a gate.

    Without bounds, asserts the check's own gates held. Bounds are mappings with
    ``min``/``max``/``confidence`` as in a suite file.
    """
    from ._pytest_suite import assert_gate

    return assert_gate
