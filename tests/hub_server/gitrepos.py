"""Bare git repositories laid out the way olah's offline mirror reads them.

``<mirrors>/<repo_type>s/<namespace>/<name>`` is a bare git repo (olah's ``mirrors-path`` layout).
Writes go through git plumbing with a throw-away index, so nothing needs a work tree and a
commit is published by one ``update-ref`` (compare-and-swap on the old tip).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_GIT_TIMEOUT_S = 30


class GitError(Exception):
    """A git command failed; ``status`` is the HTTP status the Hub would answer with."""

    def __init__(self, message: str, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class FileAdd:
    path: str
    content: bytes


@dataclass
class FileDelete:
    path: str
    folder: bool = False


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="hub-test-server",
        GIT_AUTHOR_EMAIL="hub-test-server@localhost",
        GIT_COMMITTER_NAME="hub-test-server",
        GIT_COMMITTER_EMAIL="hub-test-server@localhost",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        TZ="UTC",  # commit dates are reported in the Hub's UTC "...Z" format
    )
    return env


def check_name(kind: str, value: str) -> None:
    if not _NAME_RE.match(value) or ".." in value or value.endswith(".git"):
        raise GitError(f"Invalid {kind} name {value!r}", status=400)


def check_ref_name(value: str) -> None:
    ok = subprocess.run(
        ["git", "check-ref-format", "--branch", value], capture_output=True, timeout=_GIT_TIMEOUT_S
    ).returncode == 0
    if not ok or value.startswith("-") or "/" in value:
        raise GitError(f"Invalid reference name {value!r}", status=400)


class GitRepos:
    """All repositories of the test server under one ``mirrors`` folder."""

    def __init__(self, mirrors: Path):
        self.mirrors = Path(mirrors)
        self.mirrors.mkdir(parents=True, exist_ok=True)
        # One lock for all writes: the server is a test fixture, throughput does not matter.
        self.lock = threading.Lock()

    def path(self, repo_type_plural: str, namespace: str, name: str) -> Path:
        return self.mirrors / repo_type_plural / namespace / name

    def exists(self, repo_type_plural: str, namespace: str, name: str) -> bool:
        return (self.path(repo_type_plural, namespace, name) / "HEAD").is_file()

    def _git(self, repo: Path, *args: str, input: bytes | None = None, env: dict | None = None) -> str:
        full_env = _git_env()
        if env:
            full_env.update(env)
        proc = subprocess.run(
            ["git", "--git-dir", str(repo), *args],
            input=input,
            capture_output=True,
            env=full_env,
            timeout=_GIT_TIMEOUT_S,
        )
        if proc.returncode != 0:
            raise GitError(
                f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}", status=500
            )
        return proc.stdout.decode()

    def create(self, repo_type_plural: str, namespace: str, name: str) -> None:
        check_name("namespace", namespace)
        check_name("repo", name)
        repo = self.path(repo_type_plural, namespace, name)
        with self.lock:
            if self.exists(repo_type_plural, namespace, name):
                raise GitError("You already created this repo", status=409)
            repo.mkdir(parents=True, exist_ok=True)
            self._git(repo, "init", "--bare", "--quiet", "--initial-branch=main")
            # The Hub starts every repo with one commit holding .gitattributes on main.
            self._commit_locked(repo, "main", [FileAdd(".gitattributes", b"")], "initial commit", None, create=True)

    def resolve(self, repo: Path, rev: str) -> str | None:
        proc = subprocess.run(
            ["git", "--git-dir", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
            env=_git_env(),
            timeout=_GIT_TIMEOUT_S,
        )
        if proc.returncode != 0:
            return None
        return proc.stdout.decode().strip() or None

    def branch_exists(self, repo: Path, branch: str) -> bool:
        return self.resolve(repo, f"refs/heads/{branch}") is not None

    def tag_exists(self, repo: Path, tag: str) -> bool:
        return self.resolve(repo, f"refs/tags/{tag}") is not None

    def list_files(self, repo: Path, rev: str) -> dict[str, str]:
        """``{path: blob sha1}`` of every file at ``rev``."""
        out = self._git(repo, "ls-tree", "-r", "-z", rev)
        files: dict[str, str] = {}
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            files[path] = meta.split()[2]
        return files

    def log(self, repo: Path, rev: str, max_count: int = 100) -> list[dict[str, str]]:
        """Commits reachable from ``rev``, newest first."""
        out = self._git(
            repo, "log", f"--max-count={max_count}", "--date=format-local:%Y-%m-%dT%H:%M:%S.000Z",
            "--format=%H%x1f%an%x1f%cd%x1f%B%x1e", rev,
        )
        commits = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, author, date, body = record.split("\x1f", 3)
            title, _, message = body.strip().partition("\n")
            commits.append({"id": sha, "author": author, "date": date, "title": title, "message": message.strip()})
        return commits

    def commit(
        self, repo: Path, branch: str, ops: list, message: str, parent_commit: str | None
    ) -> str:
        with self.lock:
            return self._commit_locked(repo, branch, ops, message, parent_commit)

    def _commit_locked(
        self,
        repo: Path,
        branch: str,
        ops: list,
        message: str,
        parent_commit: str | None,
        create: bool = False,
    ) -> str:
        head = None if create else self.resolve(repo, f"refs/heads/{branch}")
        if head is None and not create:
            raise GitError(f"Invalid rev id: {branch}", status=404, code="RevisionNotFound")
        if parent_commit is not None and parent_commit != head:
            raise GitError("A commit has happened since. Please refresh and try again.", status=412)
        with tempfile.TemporaryDirectory(prefix="hub-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if head is None:
                self._git(repo, "read-tree", "--empty", env=env)
            else:
                self._git(repo, "read-tree", head, env=env)
            present = set(self._git(repo, "ls-files", "-z", env=env).split("\0")) - {""}
            # One --index-info batch; mode 0 removes a path (update-index --remove needs a work tree).
            lines: list[str] = []
            for op in ops:
                if isinstance(op, FileAdd):
                    sha = self._git(repo, "hash-object", "-w", "--stdin", input=op.content).strip()
                    lines.append(f"100644 {sha}\t{op.path}")
                    present.add(op.path)
                    continue
                if op.folder:
                    prefix = op.path.rstrip("/") + "/"
                    doomed = [p for p in present if p.startswith(prefix)]
                    if not doomed:
                        raise GitError(f"A folder with this name doesn't exist: {op.path}", 404, "EntryNotFound")
                elif op.path not in present:
                    raise GitError(f"A file with this name doesn't exist: {op.path}", 404, "EntryNotFound")
                else:
                    doomed = [op.path]
                for p in doomed:
                    lines.append(f"0 {'0' * 40}\t{p}")
                    present.discard(p)
            if lines:
                self._git(repo, "update-index", "--index-info", input=("\n".join(lines) + "\n").encode(), env=env)
            tree = self._git(repo, "write-tree", env=env).strip()
        parents = [] if head is None else ["-p", head]
        new = self._git(repo, "commit-tree", tree, *parents, "-m", message or "commit").strip()
        # Compare-and-swap on the old tip, so a concurrent writer cannot be overwritten silently.
        old = head if head is not None else "0" * 40
        self._git(repo, "update-ref", f"refs/heads/{branch}", new, old)
        return new

    def create_branch(self, repo: Path, branch: str, start: str | None) -> None:
        check_ref_name(branch)
        with self.lock:
            if self.branch_exists(repo, branch):
                raise GitError(f"Reference already exists: refs/heads/{branch}", status=409)
            target = self.resolve(repo, start or "refs/heads/main")
            if target is None:
                raise GitError(f"Invalid rev id: {start}", status=404, code="RevisionNotFound")
            self._git(repo, "update-ref", f"refs/heads/{branch}", target, "0" * 40)

    def delete_branch(self, repo: Path, branch: str) -> None:
        if branch == "main":
            raise GitError("Cannot delete the main branch", status=403)
        with self.lock:
            if not self.branch_exists(repo, branch):
                raise GitError(f"Invalid rev id: {branch}", status=404, code="RevisionNotFound")
            self._git(repo, "update-ref", "-d", f"refs/heads/{branch}")

    def create_tag(self, repo: Path, tag: str, rev: str, message: str | None) -> None:
        check_ref_name(tag)
        with self.lock:
            if self.tag_exists(repo, tag):
                raise GitError(f"Tag already exists: {tag}", status=409)
            target = self.resolve(repo, rev)
            if target is None:
                raise GitError(f"Invalid rev id: {rev}", status=404, code="RevisionNotFound")
            if message:
                self._git(repo, "tag", "-a", tag, target, "-m", message)
            else:
                self._git(repo, "update-ref", f"refs/tags/{tag}", target, "0" * 40)

    def delete_tag(self, repo: Path, tag: str) -> None:
        with self.lock:
            if not self.tag_exists(repo, tag):
                raise GitError(f"Invalid rev id: {tag}", status=404, code="RevisionNotFound")
            self._git(repo, "update-ref", "-d", f"refs/tags/{tag}")
