"""Label Studio as the oracle: a labelling team annotates the acquired items in the browser.

:class:`LabelStudioOracle` (``oracle.synthetic`` / ``oracle.real``: ``labelstudio``) sends the items a
round acquires to a Label Studio project as tasks, waits until each has an annotation, and returns
the chosen labels. Each task's data holds the item's text(s), its loop id, whether it is synthetic
(shown above the text) and a content key (a hash of the text(s)). Before importing, the oracle lists
the project's tasks and imports only items whose key is not there yet, so a run killed while
waiting and started again re-sends nothing and collects the labels already given; the same text
acquired again (another round, seed or strategy) is the same task, labelled once.

A task counts as done once it has an annotation: the most recent submitted one gives the label, and
a task whose annotations are all cancelled ("Skip" in the labelling view) is skipped (``None``,
which the loop drops). The server (``label-studio``) runs in its own virtualenv (``make labelstudio``);
this module needs only the client, ``label-studio-sdk``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import quoteattr

from .errors import ConfigError, OracleError
from .oracles import Oracle, _check_columns, _pairs
from .types import TaskSpec

__all__ = ["LabelStudioOracle", "item_key", "labeling_config", "task_label"]

logger = logging.getLogger(__name__)

_ORIGIN = {True: "Synthetic item (written by the generator)", False: "Real item (from the pool)"}
_START_HINT = "start it with `make labelstudio` (README: Labelling with Label Studio)"


def item_key(text: str, text_pair: str | None = None) -> str:
    """The content key of an item: the same text(s) are the same Label Studio task."""
    return hashlib.sha1(json.dumps([text, text_pair], ensure_ascii=False).encode()).hexdigest()[:20]


def labeling_config(task: TaskSpec) -> str:
    """The project's labeling interface: the item's origin, its text(s), one single choice per label."""
    parts = ['<View>', '  <Header value="$origin" size="6"/>']
    if task.is_pair:
        from .generation.prompts import pair_field_names

        a, b = pair_field_names(task)
        parts += [f"  <Header value={quoteattr(a.capitalize())} size=\"5\"/>", '  <Text name="text" value="$text"/>',
                  f"  <Header value={quoteattr(b.capitalize())} size=\"5\"/>", '  <Text name="text_pair" value="$text_pair"/>']
    else:
        parts.append('  <Text name="text" value="$text"/>')
    parts.append('  <Choices name="label" toName="text" choice="single" required="true" showInline="true">')
    parts += [f"    <Choice value={quoteattr(name)}/>" for name in task.label_names]
    parts += ["  </Choices>", "</View>"]
    return "\n".join(parts)


def _config_choices(label_config: str) -> list[str] | None:
    """The Choice values of the ``label`` Choices of a labeling config (None: it has none)."""
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError:
        return None
    for node in root.iter("Choices"):
        if node.get("name") == "label":
            return [str(c.get("value")) for c in node.iter("Choice")]
    return None


def task_label(annotations: list[dict], label_names: tuple[str, ...] | list[str]) -> tuple[bool, int | None]:
    """``(done, label)`` of a task from its annotations: not done without one; the latest submitted
    (not cancelled) annotation's choice; done and ``None`` when every annotation was cancelled (skip)."""
    if not annotations:
        return False, None
    kept = [a for a in annotations if not a.get("was_cancelled")]
    if not kept:
        return True, None
    latest = max(kept, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), int(a.get("id") or 0)))
    for region in latest.get("result") or []:
        if region.get("from_name") == "label" and region.get("type") == "choices":
            chosen = (region.get("value") or {}).get("choices") or []
            if len(chosen) != 1 or chosen[0] not in label_names:
                raise OracleError(f"labelstudio oracle: annotation {latest.get('id')} chose {chosen}, not one of {list(label_names)} (fix: keep the project's labeling config as signal-hf created it)")
            return True, list(label_names).index(chosen[0])
    return True, None  # submitted without a choice: nothing to learn from, like a skip


class LabelStudioOracle(Oracle):
    """Labels by people in a Label Studio project (see the module docstring for the protocol).

    Args:
        task: the task (label names, pair fields).
        url: the Label Studio server, e.g. ``http://127.0.0.1:8080``.
        api_key: the user's API token; ``None`` reads the environment variable ``api_key_env``.
        api_key_env: where the token is read from when ``api_key`` is ``None``.
        project: title of the project; created with :func:`labeling_config` when absent, refused
            when it exists with other labels. Empty = ``signal-hf <task name>``.
        poll_interval: seconds between two looks at the project while waiting.
        timeout: seconds to wait for all items before :class:`OracleError` (``None`` = no limit).
        client: a ``label_studio_sdk.client.LabelStudio`` to use instead of building one.
        sleep: waits ``poll_interval`` seconds (``time.sleep``).
    """

    name = "labelstudio"
    asks_people = True

    def __init__(
        self,
        task: TaskSpec,
        *,
        url: str = "http://127.0.0.1:8080",
        api_key: str | None = None,
        api_key_env: str = "LABEL_STUDIO_API_KEY",
        project: str = "",
        poll_interval: float = 5.0,
        timeout: float | None = None,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if poll_interval <= 0:
            raise ConfigError("oracle.labelstudio_poll_interval", f"must be > 0, got {poll_interval}", "e.g. 5")
        self.task, self.url, self.poll_interval, self.timeout, self._sleep = task, url.rstrip("/"), poll_interval, timeout, sleep
        self.title = project or f"signal-hf {task.name}"
        self.client = client if client is not None else self._connect(api_key if api_key is not None else os.environ.get(api_key_env), api_key_env)
        self.project_id = self._project()

    def _connect(self, api_key: str | None, api_key_env: str) -> Any:
        if not api_key:
            raise ConfigError("oracle.labelstudio_api_key_env", f"${api_key_env} is not set: the labelstudio oracle needs a Label Studio API token",
                              f"export {api_key_env}=<the token under Account & Settings in Label Studio, or the --user-token the server was started with>")
        try:
            from label_studio_sdk.client import LabelStudio
        except ImportError as e:
            raise OracleError(f"labelstudio oracle: the client is missing ({e}) (fix: `make install`, or pip install --no-deps label-studio-sdk==2.1.2 plus the `labelstudio` extra)") from e
        return LabelStudio(base_url=self.url, api_key=api_key, timeout=60)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """One SDK call, its failures as one OracleError line (the token never in it)."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn()
        except httpx.TransportError as e:
            raise OracleError(f"labelstudio oracle: cannot reach Label Studio at {self.url} to {what} ({type(e).__name__}) (fix: {_START_HINT}, or set oracle.labelstudio_url)") from e
        except ApiError as e:
            if e.status_code in (401, 403):
                raise OracleError(f"labelstudio oracle: Label Studio at {self.url} refused the API token (HTTP {e.status_code}) (fix: export the token of a user of that server)") from e
            raise OracleError(f"labelstudio oracle: Label Studio at {self.url} failed to {what}: HTTP {e.status_code} {str(e.body)[:200]} (fix: see the server's log)") from e

    def _project(self) -> int:
        found = [p for p in self._call("list projects", lambda: list(self.client.projects.list(title=self.title))) if p.title == self.title]
        if len(found) > 1:
            raise OracleError(f"labelstudio oracle: {len(found)} projects are titled {self.title!r} (ids {[p.id for p in found]}) (fix: rename or delete all but one, or set oracle.labelstudio_project)")
        if found:
            project = found[0]
            choices = _config_choices(project.label_config or "")
            if choices != list(self.task.label_names):
                raise OracleError(f"labelstudio oracle: project {self.title!r} labels {choices}, the task {list(self.task.label_names)} (fix: set oracle.labelstudio_project to a new title)")
            return int(project.id)
        project = self._call("create a project", lambda: self.client.projects.create(
            title=self.title, label_config=labeling_config(self.task), show_skip_button=True,
            description=f"signal-hf active learning: {self.task.name} ({', '.join(self.task.label_names)})",
        ))
        logger.info("labelstudio oracle: created project %r at %s/projects/%s", self.title, self.url, project.id)
        return int(project.id)

    def _tasks(self) -> dict[str, Any]:
        """The project's signal-hf tasks by content key (tasks made by hand, without a key, are left alone)."""
        tasks = self._call("list tasks", lambda: list(self.client.tasks.list(project=self.project_id, fields="all", page_size=100)))
        out: dict[str, Any] = {}
        for t in tasks:
            key = (t.data or {}).get("key")
            if key and key not in out:
                out[str(key)] = t
        return out

    def annotate(self, items: Any) -> list[int | None]:
        _check_columns(items, self.task, "labelstudio oracle")
        texts, pairs = _pairs(items, self.task)
        n = len(texts)
        if n == 0:
            return []
        ids = [str(x) for x in items["id"]] if "id" in items.column_names else [""] * n
        synthetic = [s == "synthetic" for s in items["source"]] if "source" in items.column_names else [False] * n
        keys = [item_key(texts[i], pairs[i] if pairs else None) for i in range(n)]
        present = self._tasks()
        new: dict[str, dict] = {}
        for i, k in enumerate(keys):
            if k not in present and k not in new:
                data = {"text": texts[i], "key": k, "item_id": ids[i], "synthetic": synthetic[i], "source": "synthetic" if synthetic[i] else "real", "origin": _ORIGIN[synthetic[i]]}
                if pairs:
                    data["text_pair"] = pairs[i]
                new[k] = {"data": data}
        if new:
            self._call("import tasks", lambda: self.client.projects.import_tasks(self.project_id, request=list(new.values())))
        unique = len(set(keys))
        logger.info("labelstudio oracle: %d item(s) to label at %s/projects/%d (%d new task(s), %d already there)",
                    unique, self.url, self.project_id, len(new), unique - len(new))
        return self._wait(keys)

    def _wait(self, keys: list[str]) -> list[int | None]:
        start, shown = time.monotonic(), -1
        want = set(keys)
        while True:
            tasks = self._tasks()
            missing = want - tasks.keys()
            if missing:
                raise OracleError(f"labelstudio oracle: {len(missing)} task(s) sent to project {self.title!r} are gone (deleted?) (fix: run again to re-send them)")
            state = {k: task_label(list(tasks[k].annotations or []), self.task.label_names) for k in want}
            done = sum(1 for d, _ in state.values() if d)
            if done != shown:
                logger.info("labelstudio oracle: %d of %d annotated (%s/projects/%d)", done, len(want), self.url, self.project_id)
                shown = done
            if done == len(want):
                return [state[k][1] for k in keys]
            if self.timeout is not None and time.monotonic() - start >= self.timeout:
                raise OracleError(
                    f"labelstudio oracle: {len(want) - done} of {len(want)} item(s) not annotated after {self.timeout:g} s "
                    f"(fix: annotate them at {self.url}/projects/{self.project_id} and run again: nothing is sent twice; or raise oracle.labelstudio_timeout)"
                )
            self._sleep(self.poll_interval)
