"""Server settings: defaults < config file (TOML or JSON) < FRAZIL_* environment < command line.

One dataclass, so every knob has one name, one type and one default, and the
same name works in a file (``db = "..."``), the environment (``FRAZIL_DB``)
and, for the common ones, a flag (``--db``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from common.cli_errors import CliError
from common.containers import os_images


@dataclass
class Settings:
    db: str = "sqlite:///./frazil-data/frazil.db"
    """Store URL: sqlite:///path or mongodb://host/db."""
    host: str = "127.0.0.1"
    port: int = 8080
    durable_commits: bool = True
    """An acknowledged write survives a power loss: SQLite ``synchronous=FULL``
    (one fsync of the WAL per group commit), MongoDB ``w="majority", j=True``.
    False (opt-out, for speed): SQLite NORMAL, survives a process crash only
    (docs/store.md)."""
    public_url: str = ""
    """Address pilots and users reach the server at (default http://host:port)."""
    data_dir: str = "./frazil-data"
    """Where the local signing key, scratch store and local pilots' files live."""
    provider: str = "local"
    """Pilot provider: local | htcondor | slurm | none."""
    local_slots: str = "cpus=2"
    """Resources the local provider may give to pilots, e.g. 'cpus=2,memory=4GB'."""
    auth_key_file: str = ""
    """Local token signing key (default <data_dir>/auth.key, created on first start)."""
    openid_url: str = ""
    """OpenID Connect issuer (e.g. Keycloak realm URL); empty = local tokens."""
    openid_audience: str = ""
    token_issuer: str = "frazil"
    scratch_dir: str = ""
    """Directory of the scratch store (default <data_dir>/scratch)."""
    scratch_url: str = ""
    """Base URL of an external scratch store (e.g. gsiftp://host/scratch); empty = served by this server."""
    osdf_federation: str = "pelican://osg-htc.org"
    """The federation osdf:/// URLs go through (pilots get it in the claim reply);
    e.g. pelican://127.0.0.1:8443 for a `frazil federation`."""
    storage_namespace: str = "/icecube/wipac"
    """The namespace storage tokens are for: at submit, data entries under osdf://<it>/... give
    the task storage.read/modify scopes relative to it (IceProd's rule)."""
    pelican_ca_file: str = ""
    """PEM file of an extra CA pilots trust for the federation (a `frazil federation`'s ca.pem)."""
    credentials_key_file: str = ""
    """Key that encrypts stored credentials (default <data_dir>/credentials.key, created on first start)."""
    token_clients: dict[str, Any] = field(default_factory=dict)
    """IceProd's TOKEN_CLIENTS: {issuer URL: {"client_id": ..., "client_secret": ...}} for refresh and exchange."""
    token_refresh_window_hours: float = 168.0
    """Only credentials used within this window are refreshed (IceProd's TOKEN_REFRESH_WINDOW)."""
    token_expire_buffer_minutes: float = 15.0
    """Refresh a credential this long before it expires (IceProd's TOKEN_EXPIRE_BUFFER)."""
    token_check_interval_seconds: float = 180.0
    """How often the refresh loop looks (IceProd's TOKEN_SERVICE_CHECK_INTERVAL)."""
    lease_seconds: float = 600.0
    """How long a claimed task stays a pilot's without a heartbeat."""
    heartbeat_seconds: float = 60.0
    """How often pilots heartbeat; they are told at most a third of ``lease_seconds``
    (``heartbeat_interval``), so a short lease never loses a live pilot."""
    pilot_token_seconds: float = 3600.0
    """Lifetime of a registered pilot's token (bound to its pilot_id); every
    heartbeat reply carries a renewed one. Never less than a lease plus a
    heartbeat (``pilot_token_lifetime``)."""
    pilot_bootstrap_seconds: float = 7 * 86400.0
    """Lifetime of the register-only token a batch provider (HTCondor, Slurm)
    gives the pilots it submits: how long a pilot job may wait in the queue.
    The local provider's pilots start at once and get ``pilot_start_seconds``."""
    pilot_start_seconds: float = 600.0
    """Lifetime of a local pilot's register-only token (its start window)."""
    max_body_bytes: int = 64 * 1024 * 1024
    max_source_bundle_bytes: int = 8 * 1024 * 1024
    """The module sources one submission may carry, all files together (common/sources.py)."""
    config_check_seconds: float = 10.0
    """CPU seconds one submitted config may take to check (macro expansion and
    planning, in a worker process); past it the submit is a 400 that says so."""
    config_workers: int = 0
    """Worker processes for config checks (0: one per core, at most 4)."""
    max_retries: int = 10
    """Non-physics failures retried; the next one fails the task (IceProd 2: 11th failure)."""
    max_infra_failures: int = 50
    """Evictions / lost pilots tolerated before a task fails."""
    retry_delay_seconds: float = 60.0
    """A non-physics retry is queued again only after this many seconds, doubled per
    non-physics failure (60, 120, 240, ...); 0: at once. Escalated retries and
    infrastructure failures are not delayed (docs/scheduling.md, "Retry pacing")."""
    retry_delay_max_seconds: float = 3600.0
    """The longest delay of a paced retry."""
    max_memory_gb: float = 64.0
    max_disk_gb: float = 500.0
    max_time_hours: float = 168.0
    loops: bool = True
    """Run the background loops (materialize, release, queue, roll up, reap)."""
    loop_interval_seconds: float = 2.0
    materialize_batch: int = 10_000
    backlog_limit: int = 250_000
    """Most tasks materialized but not started (idle, waiting, queued) per
    dataset: job creation stops there, also in the middle of a request."""
    user_backlog_limit: int = 1_000_000
    """The same over all datasets of one user."""
    min_free_disk_gb: float = 2.0
    """Job creation stops while the store's file system has less free space
    (SQLite), and while the WAL is past its limit (checkpoints behind)."""
    claim_rate_per_pilot: float = 50.0
    """Claims per second a pilot may make before getting 429 + Retry-After."""
    claim_wait_max_seconds: float = 20.0
    """Longest a claim with ``wait`` is held until a task that fits is queued (0: claims never wait)."""
    usage_half_life_hours: float = 168.0
    fair_share_weight: float = 0.5
    """How much recent usage lowers a dataset's priority: factor 1 - weight x (user + group share) / 2."""
    queue_target: int = 20_000
    """Queued tasks the queue loop keeps ready so claims always find work."""
    queue_batch: int = 10_000
    """Most tasks queued (or re-prioritised) per store call."""
    rollup_sweep_batch: int = 250
    """Jobs re-checked per roll-up cycle by the safety sweep (reports roll up at once)."""
    priority_refresh_seconds: float = 600.0
    """Longest time between two recomputations of the dataset priorities (task priority = dataset base + offset)."""
    dataset_metrics_seconds: float = 60.0
    """How often the per-dataset /metrics gauges are recounted (at least 100 × what a count took)."""
    dataset_metrics_max: int = 200
    """Most datasets (the newest processing/suspended/errors ones) with per-dataset gauges."""
    log_retention_days: float = 31.0
    """frazil's own logs of a task (stdlog, failure reasons, anything not stdout/stderr) are removed
    after this many days (IceProd's log_cleanup: 31); 0 keeps them. A dataset overrides it with
    ``log_retention_days`` in its config's options."""
    task_log_retention_days: float = 365.0
    """Task stdout/stderr are removed after this many days; 0 keeps them. Per dataset:
    ``task_log_retention_days`` in its config's options."""
    log_cleanup_seconds: float = 3600.0
    """How often the log-retention loop runs."""
    log_cleanup_batch: int = 1000
    """Most logs one round of the log-retention loop looks at (one short store call each)."""
    quarantine_window_minutes: float = 60.0
    """The window the quarantine loop judges hosts and sites over (docs/operators.md, "Quarantine")."""
    quarantine_host_failures: int = 5
    """Different tasks one host must fail non-physically in the window (while failing more than it
    completes and other hosts complete tasks of the same datasets) to be quarantined; 0: never."""
    quarantine_site_failures: int = 20
    """The same for a whole site (against other sites); 0: never."""
    quarantine_hours: float = 24.0
    """How long a quarantine lasts unless an admin lifts it sooner."""
    quarantine_check_seconds: float = 60.0
    """How often the quarantine loop looks."""
    quarantine_scan_max: int = 50_000
    """Most attempts one look reads (the newest window's, oldest first)."""
    alert_check_seconds: float = 60.0
    """How often the alerts loop looks for events and delivers them."""
    alert_retry_seconds: float = 30.0
    """First retry of an undelivered alert; each next one waits twice as long."""
    alert_max_tries: int = 8
    """Deliveries tried before an alert is given up (recorded as failed)."""
    smtp_host: str = ""
    """SMTP server for e-mail alerts (empty: e-mail alerts cannot be delivered)."""
    smtp_port: int = 25
    smtp_from: str = "frazil@localhost"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    provider_interval_seconds: float = 5.0
    """How often the provisioning loop compares the queue with the pilots (seconds)."""
    local_file_roots: str = ""
    """Comma-separated absolute folders where pilots of the local provider
    (site ``local_site``) may write file:// outputs, besides the data dir
    (always allowed for them, less the server's own files)."""
    grid_file_roots: str = ""
    """Comma-separated absolute folders where every other pilot may write
    file:// outputs; none by default (docs/config.md, "file:// outputs")."""
    local_site: str = "local"
    """Site name the local provider's pilots register with."""
    local_pilot_user: str = "frazil-pilot"
    """User local pilots run as when the server runs as root (created on first use);
    "" runs them as the server's own user (docs/operators.md, "Trust boundaries")."""
    local_pilot_hours: float = 24.0
    """Lifetime of a local pilot; it leaves earlier when idle."""
    site_max_idle: int = 10
    """Per site: most pilots waiting in the batch queue (pilot_sites may override per site)."""
    site_max_running: int = 100
    """Per site: most pilots submitted and not ended."""
    site_max_per_cycle: int = 20
    """Per site: most pilots submitted in one provisioning round."""
    site_ramp_up: int = 2
    """Per site: pilots a round may submit beyond the number already running (probe a new site first)."""
    pilot_sites: dict[str, Any] = field(default_factory=dict)
    """Per-site tables: limits, HTCondor requirements and extra submit lines (docs/operators.md)."""
    pilot_bootstrap: str = ""
    """How a batch pilot finds frazil: container | shared | bundle (docs/operators.md); empty: the
    provider's default (HTCondor: container; Slurm: shared, this installation)."""
    pilot_image: str = "/cvmfs/singularity.opensciencegrid.org/frazil/pilot:latest"
    """Container image of HTCondor pilots (+SingularityImage) when pilot_bootstrap = container."""
    pilot_command: str = ""
    """The frazil program pilots run: a path on a shared file system (CVMFS) for HTCondor
    (default /usr/local/bin/frazil, the container's), or a command line for local pilots."""
    pilot_bundle: str = "build/frazil-pilot.pyz"
    """The `make pilot-bundle` zipapp HTCondor transfers when pilot_bootstrap = bundle."""
    condor_schedd: str = ""
    """Schedd name (empty: the local schedd)."""
    condor_collector: str = ""
    """Collector that locates condor_schedd (empty: the configured one)."""
    condor_submit_dir: str = ""
    """Where pilot submit files, token files and the job event log go (default <data_dir>/condor)."""
    os_images: dict[str, Any] = field(default_factory=dict)
    """OS_ARCH = image for tasks asking for an OS, over IceCube's EL7/EL8/EL9 OSG images
    (common/containers.py); an empty image removes an OS. Sent to pilots at registration."""
    slurm_submit_dir: str = ""
    """Slurm batch scripts, pilot token files and outputs (default <data_dir>/slurm); compute nodes must see it."""
    slurm_partition: str = ""
    """Partition of pilots of sites that name none (empty: the cluster's default partition)."""
    slurm_account: str = ""
    slurm_qos: str = ""
    slurm_constraint: str = ""
    slurm_time_limit: int = 0
    """Most minutes a Slurm pilot asks for (0: its lifetime from demand); per site: time_limit."""
    slurm_json: bool = True
    """Read squeue/sacct as JSON where the installed Slurm has it (false: the filtered fixed format)."""
    log_level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def heartbeat_interval(self) -> float:
        """What pilots are told (registration, claims, heartbeat replies): three
        heartbeats fit in a lease, and a pilot is lost after three missed ones."""
        return min(self.heartbeat_seconds, self.lease_seconds / 3)

    @property
    def pilot_token_lifetime(self) -> int:
        """Seconds a registered pilot's token lives: the setting, but at least a
        lease and a heartbeat (four heartbeats), so a token only runs out after
        its pilot's leases did: nothing it could still report is lost with it."""
        return int(max(self.pilot_token_seconds, self.lease_seconds + self.heartbeat_interval))

    def path(self, value: str, default_name: str) -> pathlib.Path:
        return pathlib.Path(value) if value else pathlib.Path(self.data_dir) / default_name


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _coerce(name: str, value: Any) -> Any:
    kind = type(getattr(Settings(), name))
    try:
        if kind is bool and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(value)
            return lowered in {"1", "true", "yes", "on"}
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if kind in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise CliError(f"setting {name!r}: expected {kind.__name__}, got {value!r}") from None


def _read_file(path: str) -> dict[str, Any]:
    file = pathlib.Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"config file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"config file {path}: expected a table/object of settings")
    return data


def load_settings(config_file: str | None = None, environ: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings; unknown names are errors (a typo must not be ignored)."""
    values: dict[str, Any] = {}
    if config_file:
        for key, value in _read_file(config_file).items():
            name = key.replace("-", "_")
            if name not in _FIELDS:
                raise CliError(f"config file {config_file}: unknown setting {key!r}")
            values[name] = _coerce(name, value)
    for key, value in (os.environ if environ is None else environ).items():
        if key.startswith("FRAZIL_") and key not in {"FRAZIL_URL", "FRAZIL_TOKEN", "FRAZIL_TOKEN_FILE"} \
                and not key.startswith("FRAZIL_TEST_"):
            name = key[len("FRAZIL_"):].lower()
            if name not in _FIELDS:
                raise CliError(f"environment variable {key}: unknown setting {name!r}")
            values[name] = _coerce(name, value)
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value)
    settings = Settings(**values)
    for name in ("retry_delay_seconds", "retry_delay_max_seconds", "claim_wait_max_seconds"):
        value = getattr(settings, name)
        if not 0 <= value <= 86_400:  # NaN fails too
            raise CliError(f"setting {name!r}: expected seconds from 0 to 86400, got {value!r}")
    try:
        os_images(settings.os_images)
    except ValueError as exc:
        raise CliError(f"setting 'os_images': {exc}") from None
    return settings
