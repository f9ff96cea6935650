"""AgentBench's OS-interaction tasks (THUDM AgentBench; its dev split as inspect-evals ships it) as a ponder eval:
``ponder eval run --dataset agentbench-os --strategy react``.

The tasks and their check scripts are data files of the ``inspect-evals`` package (installed without its
dependencies by ``scripts/setup.sh``; nothing of it is imported, and no task text is copied into this repository).
Only the dev split is read: the package's test split is kept for checking results and never opened here.

Each task runs like this:

1. **Its environment, built as an image** (``ponder-agentbench:<id>-<hash>``, on the sandbox image, cached): the
   task's ``init`` runs at build time as root, as AgentBench and inspect run it in their containers: it may add
   users, write under ``/home`` or ``/etc``. What it leaves in the home folder is packed into the image, because
   at run time the home is the sandbox's fresh tmpfs. Setup gets its privilege there, before any session exists;
   the agent's sandbox is exactly as hardened as every other (unprivileged user, read-only root, no network, no
   capabilities, its limits).
2. **A session on that image**: the home is unpacked into ``/workspace`` (as the sandbox user, so its files are the
   agent's, as root's home is root's in the original), and the task's ``start`` program, when it has one, is
   started beside the runner as another unprivileged user (``Manager.start_background``), so it keeps running
   while the agent works and the runner's end-of-call cleanup leaves it alone.
3. **The strategy** works through ponder's normal sandbox tools in that session (its ``ask_human`` tool is off:
   nobody answers in a benchmark).
4. **The task's own check**, in the same session, as the sandbox user: an exact ``match`` of the answer; or the
   task's comparison script fed the answer and the expected value; or the task's check script run against the
   session's state.

Adaptations, the way inspect makes them and where this sandbox differs (every one is listed by ``adaptations``
of each record and counted in the benchmark's report):

- ``/root`` and ``/usr`` in a task (and ``/home/agent``, inspect's home) become ``/workspace``, the agent's home.
- Answers that depend on the machine (users, groups, CPUs, disk use, counts under ``/home``) are not the dev
  split's ``match``, which was taken in AgentBench's container, but the output of the task's own ``example``
  command run in a twin session of the same environment before the agent starts (inspect's rule for its test
  split). Both values are recorded.
- A task whose ``init`` names a ``user`` has the agent work as the sandbox user instead, with that user's home
  as its home (the files the init gave that user are the agent's).
- A ``start`` program runs as an unprivileged user of its own (it cannot be the agent's: the runner kills what the
  agent's user leaves running); the home is made writable to it first (``chmod -R a+rwX``).
- A task whose ``check`` is a script run against the machine sees ``PATH`` extended with the home and its
  ``bin``, ``.local/bin`` and ``local/bin`` folders: only the home is writable here, where AgentBench's agent
  (root) installs commands into ``/usr/local/bin``.
- A task whose comparison script is ``integer-match.py`` is a ``number`` task: its answer is typed as a number
  (as GSM8K's are), written without a decimal point when whole; the others are ``string`` tasks. The type comes
  from the check the task declares, never from its expected value.
- The answer is compared after stripping white space and enclosing quotes or backticks.
- A task whose setup needs a file of the AgentBench repository (``init.file``) cannot run: no package ships the
  repository, and it is not fetched. It is reported as ``unrunnable``, never as a failure of the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import shlex
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ponder.agents import Context, StrategyResult, Task, TaskFamily, strategy_class
from ponder.config import ToolServerSettings
from ponder.errors import ConfigError, NotFoundError, PonderError, SandboxError
from ponder.evals._datasets import Dataset, EvalItem
from ponder.evals._runner import Job, Outcome, error_dict, make_solver
from ponder.evals._scoring import Score
from ponder.tools import ToolResult, ToolSession, ToolSpec

NAME = "agentbench-os"
VERSION = "0.28.0"  # the inspect-evals release whose dev split and scripts this adapter was written against
DEV_FILE = "agent_bench_os.json"
HOME = "/workspace"
TASK_DIR = "/opt/ponder-task"  # in a task image: its init script and the packed home
IMAGE_REPO = "ponder-agentbench"
ADAPTER = "1"  # bump when the way images are built changes: every task image is rebuilt
CHECK_PATH = f"{HOME}:{HOME}/bin:{HOME}/.local/bin:{HOME}/local/bin"
START_WAIT_S = 1.5  # a start program's first write lands before the agent looks
INSTALL_HINT = f"pip install --no-deps inspect-evals=={VERSION} (scripts/setup.sh does; only its data files are read)"
ANSWER_NOTE = (
    "\n\nWork in the sandbox with your tools. When you have the result, submit only the answer the question asks "
    "for (for example a number, a word or a file name), nothing else. If the task asks you to make something, make "
    "it, then submit 'done'."
)


class Unrunnable(PonderError):
    """A task this machine cannot set up (its environment), reported apart from the agent's failures."""

    status_code = 422


class EnvironmentFailed(PonderError):
    """A task's environment failed to build or start: not a failure of the agent."""

    status_code = 503


class OSTask(BaseModel):
    """One task, adapted to the sandbox (paths, user). ``evaluation`` kinds: ``match`` (exact answer), ``compare``
    (the task's comparison script fed the answer and the expected value), ``check`` (a script run against the
    session's state)."""

    id: str
    description: str
    labels: list[str] = Field(default_factory=list)
    init: str | None = None  # bash, run as root when the task's image is built
    start: str | None = None  # bash, started in the session before the agent (a background program)
    kind: str
    match: str | None = None
    example: str | None = None
    script: str | None = None  # the comparison or check script's name under data/scripts
    unrunnable: str | None = None
    adaptations: list[str] = Field(default_factory=list)


# -- the package's data ---------------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The installed package's ``agent_bench/data`` folder (found without importing the package)."""
    spec = importlib.util.find_spec("inspect_evals")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("AgentBench-OS needs the inspect-evals package's data files", hint=INSTALL_HINT)
    folder = Path(next(iter(spec.submodule_search_locations))) / "agent_bench" / "data"
    if not (folder / DEV_FILE).is_file():
        raise ConfigError(f"the installed inspect-evals has no agent_bench/data/{DEV_FILE}", hint=INSTALL_HINT)
    return folder


def available() -> bool:
    try:
        data_dir()
    except ConfigError:
        return False
    return True


def is_agentbench(name: str) -> bool:
    return name == NAME


def _home(text: str) -> str:
    return text.replace("/home/agent", HOME).replace("/root", HOME).replace("/usr", HOME)


def adapt(record: dict[str, Any]) -> OSTask:
    """One dev record as this sandbox runs it (see the module's list of adaptations)."""
    notes: list[str] = []
    description = str(record["description"])
    if _home(description) != description:
        notes.append("paths: /root, /usr and /home/agent are the agent's home, /workspace")
    init: str | None = None
    unrunnable: str | None = None
    create = record.get("create")
    steps: list[Any] = []
    if isinstance(create, dict) and create.get("init") is not None:
        steps = create["init"] if isinstance(create["init"], list) else [create["init"]]
    elif create is not None and not isinstance(create, dict):
        notes.append("its 'create' is not a setup (a check spec in the data); the task runs without setup")
    user: str | None = None
    scripts: list[str] = []
    for step in steps:
        if isinstance(step, str):
            scripts.append(step)
        elif isinstance(step, dict) and "code" in step:
            scripts.append(str(step["code"]))
        elif isinstance(step, dict) and "file" in step:
            unrunnable = (
                f"its setup runs {step['file']} from the AgentBench repository, which no package ships (inspect "
                "clones the repository; this machine does not fetch it)"
            )
        if isinstance(step, dict) and step.get("user"):
            user = str(step["user"])
    if scripts:
        init = _home("\n".join(scripts))
        if "<random-string>" in init:
            notes.append("<random-string> is a fresh random string at each image build, as inspect does")
    if user is not None and init is not None:
        init = init.replace(f"cd /home/{user}", f"cd {HOME}")
        notes.append(f"the agent works as the sandbox user in place of {user!r}, whose home is the agent's")
    start = _home(str(record["start"])) if record.get("start") else None
    if start:
        notes.append("its start program runs as a user of its own; the home is made writable to it")
    evaluation = record.get("evaluation") or {}
    check = evaluation.get("check")
    match = str(evaluation["match"]) if "match" in evaluation else None
    example = evaluation.get("example")
    example = _home(str(example.get("code") if isinstance(example, dict) else example)) if example else None
    script: str | None = None
    if isinstance(check, dict) and "file" in check:
        kind, script = "check", str(check["file"])
        notes.append(f"the check sees PATH extended with {CHECK_PATH} (only the home is writable here)")
        example = None
    elif isinstance(check, list) and len(check) >= 2 and isinstance(check[1], dict) and "file" in check[1]:
        kind, script = "compare", str(check[1]["file"])
        if example:
            notes.append("expected answer: the task's example run in a twin session (the dev match is kept beside)")
    elif match is not None:
        kind, example = "match", None
    else:
        kind = "unknown"
        unrunnable = unrunnable or f"its evaluation {json.dumps(evaluation)[:120]} is of no kind this adapter knows"
    return OSTask(
        id=str(record["id"]),
        description=_home(description),
        labels=[str(x) for x in record.get("labels") or []],
        init=init,
        start=start,
        kind=kind,
        match=match,
        example=example,
        script=script,
        unrunnable=unrunnable,
        adaptations=notes,
    )


def load_tasks(folder: Path | None = None) -> list[OSTask]:
    path = (folder or data_dir()) / DEV_FILE
    return [adapt(r) for r in json.loads(path.read_text(encoding="utf-8"))]


def family_of(task: OSTask) -> TaskFamily:
    """The answer's type, from the check the task declares (``integer-match.py`` compares integers)."""
    return TaskFamily.number if task.script == "check/integer-match.py" else TaskFamily.string


def load_agentbench(*, limit: int | None = None, offset: int = 0, folder: Path | None = None) -> Dataset:
    """The dev split's tasks ``offset .. offset+limit`` as eval items; ``gold`` is the adapted task (the runner's
    solver sets up and checks with it; the strategy sees only the question)."""
    root = folder or data_dir()
    tasks = load_tasks(root)[offset:]
    tasks = tasks if limit is None else tasks[:limit]
    items = [
        EvalItem(
            id=t.id,
            line=offset + n + 1,
            task=Task(question=t.description + ANSWER_NOTE, family=family_of(t), metadata={"dataset": NAME}),
            gold=t.model_dump(),
        )
        for n, t in enumerate(tasks)
    ]
    return Dataset(name=NAME, path=root / DEV_FILE, family=TaskFamily.string, items=items)


def script_text(name: str, folder: Path | None = None) -> str:
    path = (folder or data_dir()) / "scripts" / name
    if not path.is_file():
        raise NotFoundError(f"AgentBench-OS check script {name!r} is not in the installed package", hint=INSTALL_HINT)
    return path.read_text(encoding="utf-8")


# -- task images ----------------------------------------------------------------------------------------------------


def image_dockerfile(base: str) -> str:
    return "\n".join(
        [
            f"FROM {base}",
            "USER 0:0",
            f"COPY init.sh {TASK_DIR}/init.sh",
            # the init as AgentBench runs it (bash, as root, in the home), then the home packed for the session and
            # setuid bits stripped again, as the sandbox image does (an init must not hand the agent privileges)
            f"RUN cd {HOME} && HOME={HOME} bash -e {TASK_DIR}/init.sh"
            f" && tar -C {HOME} -cpf {TASK_DIR}/home.tar ."
            " && find / -xdev -type f -perm /6000 -exec chmod a-s {} +",
            "USER 1000:1000",
            f"WORKDIR {HOME}",
            "",
        ]
    )


def image_tag(task: OSTask, base_id: str) -> str:
    key = hashlib.sha256(f"{ADAPTER}\0{base_id}\0{task.init or ''}".encode()).hexdigest()[:12]
    return f"{IMAGE_REPO}:{task.id}-{key}"


def build_task_image(task: OSTask, settings: ToolServerSettings) -> tuple[str, bool]:
    """The task's image on the sandbox image (built unless present); returns its tag and whether it was built."""
    import docker.errors
    from docker.client import DockerClient

    from ponder.toolserver._image import DEFAULT_DOCKER_HOST

    host = settings.docker_host or DEFAULT_DOCKER_HOST
    try:
        client = DockerClient(base_url=host, timeout=600)
        base_id = str(client.images.get(settings.image).id)
    except docker.errors.ImageNotFound as exc:
        raise EnvironmentFailed(
            f"the sandbox image {settings.image!r} is not built", hint="`ponder toolserver build-image`"
        ) from exc
    except docker.errors.DockerException as exc:
        raise EnvironmentFailed(f"cannot reach the Docker engine at {host}: {exc}") from exc
    try:
        tag = image_tag(task, base_id)
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(tag)
            return tag, False
        init = "RANDOM=3\n" + (task.init or "true").replace("<random-string>", uuid.uuid4().hex)
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            for name, text in (("Dockerfile", image_dockerfile(settings.image)), ("init.sh", init + "\n")):
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), int(time.time())
                tar.addfile(info, io.BytesIO(data))
        context.seek(0)
        try:
            client.images.build(fileobj=context, custom_context=True, tag=tag, pull=False, rm=True, forcerm=True)
        except docker.errors.BuildError as exc:
            tail = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-1500:]
            raise EnvironmentFailed(f"task {task.id}'s environment did not build: {exc.msg}\n{tail}") from exc
        except docker.errors.DockerException as exc:
            raise EnvironmentFailed(f"task {task.id}'s environment did not build: {exc}") from exc
        return tag, True
    finally:
        client.close()


# -- sessions -------------------------------------------------------------------------------------------------------


class PreparedToolServer:
    """A ToolServer whose one session is already open and set up: the strategy's ``session()`` gets it (and does
    not close it; the solver does, after the check)."""

    def __init__(self, tools: Sequence[ToolSpec], specs: list[dict[str, Any]], session: ToolSession) -> None:
        self.tools = tools
        self._specs = specs
        self._session = session

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ToolSession]:
        yield self._session

    def specs(self) -> list[dict[str, Any]]:
        return self._specs


async def _shell(session: ToolSession, command: str, timeout_s: float = 120.0) -> ToolResult:
    return await session.call("shell", {"command": command}, timeout_s=timeout_s)


async def prepare(session: Any, task: OSTask) -> None:
    """Unpack the home and start the task's background program (``session`` is a LocalToolSession)."""
    done = await _shell(session, f"tar -C {HOME} -xpf {TASK_DIR}/home.tar")
    if not done.ok:
        raise EnvironmentFailed(f"task {task.id}'s home did not unpack: {done.error or done.output}")
    if task.start:
        done = await _shell(session, f"chmod -R a+rwX {HOME}")
        if not done.ok:
            raise EnvironmentFailed(f"task {task.id}'s home could not be opened to its program: {done.error}")
        await session.start_background(task.start)
        await asyncio.sleep(START_WAIT_S)


def clean_answer(answer: Any) -> str:
    if isinstance(answer, float) and answer.is_integer():
        return str(int(answer))
    text = "" if answer is None else str(answer).strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "`'\"":
        text = text[1:-1].strip()
    return text


async def expected_answer(session: ToolSession, task: OSTask) -> str:
    """The task's example command's output in a session set up like the agent's (before the agent runs)."""
    done = await _shell(session, f"cd {HOME} && {task.example}")
    out = str(done.output.get("stdout", "")).strip()
    if not done.ok or not out:
        raise EnvironmentFailed(
            f"task {task.id}'s example command gave no answer here (exit {done.output.get('exit_code')}, "
            f"{str(done.output.get('stderr', '') or done.error)[:300]})"
        )
    return out


def _heredoc(text: str) -> str:
    marker = "PONDER_SCRIPT_END"
    while marker in text:
        marker += "_"
    return f"<<'{marker}'\n{text}\n{marker}\n"


async def check(session: ToolSession, task: OSTask, answer: str, expected: str | None) -> tuple[bool, str]:
    """The task's own verdict, in the agent's session: (correct, what decided it)."""
    if task.kind == "match":
        return answer == task.match, f"exact match with {task.match!r}"
    if task.script is None:
        raise EnvironmentFailed(f"task {task.id} has no check script")
    script = script_text(task.script)
    if task.kind == "compare":
        args = f"{shlex.quote(answer)} {shlex.quote(str(expected))}"
        done = await _shell(session, f"python3 - {args} {_heredoc(script)}")
        return done.ok and done.output.get("exit_code") == 0, f"{task.script} against {expected!r}"
    path = "/tmp/ponder-check.sh"
    command = f"cat > {path} {_heredoc(script)}cd {HOME} && PATH={CHECK_PATH}:$PATH bash {path}"
    done = await _shell(session, command, timeout_s=300.0)
    return done.ok and done.output.get("exit_code") == 0, f"{task.script} run in the session"


# -- the solver -----------------------------------------------------------------------------------------------------


def default_options(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """Nobody answers a question in a benchmark: ``ask_human`` off unless asked for."""
    fields = getattr(strategy_class(strategy).Options, "model_fields", {})
    return {"ask_human": False, **options} if "ask_human" in fields else dict(options)


def make_agentbench_solver(
    ctx: Context,
    settings: ToolServerSettings,
    data: Dataset,
    *,
    keep_events: bool = True,
    task_timeout_s: float = 1200.0,
) -> Callable[[Job], Awaitable[Outcome]]:
    """Set up each task's environment, run the strategy in it, run the task's check in the same session. The
    verdict goes to ``details["agentbench"]`` (read by :func:`score_agentbench`). The adapted tasks (with their
    answers) stay here, with the solver: a strategy sees only the question."""
    if settings.url:
        raise ConfigError(
            "AgentBench-OS builds an image per task and needs the Docker engine here, not a remote ToolServer",
            hint="unset PONDER_TOOLSERVER__URL for this run",
        )
    from ponder.tools import BUILTIN_TOOLS
    from ponder.toolserver import LocalToolServer

    agent_ctx = dataclasses.replace(ctx, search=None, kb=None, mcp_servers=[])
    tasks = {item.id: task_of(item) for item in data.items}

    async def solve(job: Job) -> Outcome:
        task = tasks[job.item_id]
        started = time.perf_counter()

        def failed(exc: BaseException) -> Outcome:
            return Outcome(item_id=job.item_id, error=error_dict(exc), seconds=time.perf_counter() - started)

        if task.unrunnable:
            return failed(Unrunnable(f"task {task.id} cannot run here: {task.unrunnable}"))
        try:
            image, built = await asyncio.to_thread(build_task_image, task, settings)
        except EnvironmentFailed as exc:
            return failed(exc)
        task_settings = settings.model_copy(update={"image": image, "pool_size": 0, "instance": "agentbench"})
        try:
            async with LocalToolServer(task_settings, BUILTIN_TOOLS) as server:
                expected: str | None = task.match
                if task.kind == "compare" and task.example:
                    async with server.session() as twin:
                        await prepare(twin, task)
                        expected = await expected_answer(twin, task)
                async with server.session() as session:
                    await prepare(session, task)
                    setup_s = time.perf_counter() - started
                    prepared = PreparedToolServer(server.tools, server.specs(), session)
                    inner = make_solver(
                        dataclasses.replace(agent_ctx, toolserver=prepared),
                        keep_events=keep_events,
                        timeout_s=task_timeout_s,
                    )
                    outcome = await inner(job)
                    if outcome.result is None:
                        return outcome
                    answer = clean_answer(outcome.result.answer)
                    correct, how = await check(session, task, answer, expected)
        except (EnvironmentFailed, SandboxError) as exc:
            return failed(exc if isinstance(exc, EnvironmentFailed) else EnvironmentFailed(str(exc)))
        details = dict(outcome.result.details)
        details["agentbench"] = {
            "correct": correct,
            "answer": answer,
            "expected": expected,
            "dev_match": task.match,
            "checked_by": how,
            "kind": task.kind,
            "labels": task.labels,
            "adaptations": task.adaptations,
            "image_built": built,
            "setup_seconds": round(setup_s, 2),
        }
        result = outcome.result.model_copy(update={"details": details})
        return outcome.model_copy(update={"result": result})

    return solve


def score_agentbench(item: EvalItem, result: StrategyResult) -> Score:
    verdict = result.details.get("agentbench") or {}
    expected = verdict.get("expected")
    return Score(
        correct=bool(verdict.get("correct")),
        predicted=verdict.get("answer"),
        gold=expected if expected is not None else "<checked in the session>",
        reason=str(verdict.get("checked_by", "")),
    )


def task_of(item: EvalItem) -> OSTask:
    return OSTask.model_validate(item.gold)
