"""Printer gateway settings, from the environment only."""

from __future__ import annotations

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    port: int = 18084
    printer_secret_key: str = ""
    """Fernet key that encrypts access codes at rest. Empty: a key is made once under DATA_DIR (dev only)."""
    lease_ttl_seconds: float = 30.0
    """How long a printer's lease outlives its holder's last renewal. Leases are renewed when a third of it
    is gone (half of it while a takeover connects; checked every sixth), so a replica whose event loop stalls
    for about two thirds of it (a half, during a takeover) loses them (6 s lost some during a takeover on a
    saturated 2-core host). A dead replica is not waited for
    this long: its leases are taken over once its heartbeat (`REPLICA_TTL_SECONDS`) expires. So it only
    bounds a stall, and each renewal is a key-value write: at 10 s a replica of 1,000 printers made about
    250 a second, a quarter of its steady-state CPU once reports cost little."""
    replica_ttl_seconds: float = 3.0
    """How long a replica's heartbeat key outlives its last renewal (renewed every eighth of it, on a thread of its
    own, `HeartbeatThread`): a kill -9 is noticed within this, and its printers' leases are then taken over by
    compare-and-set. Shorter than the leases' TTL, so detection is fast while a slow renewal pass costs no
    lease. Both TTLs are applied to their key-value buckets at start, existing buckets too. It was 4 s while the
    heartbeat ran on the event loop (which lapsed on a saturated CPU even so); on its thread no heartbeat lapsed
    in six saturated 10,000-printer handovers at 2-4 s, but some did when the survivors were loaded more (a
    profiler attached at 2 s; muting off, or slowed, at 3 s): 3 s keeps some margin."""
    heartbeat_stall_seconds: float = 15.0
    """The heartbeat (on a thread of its own, so a saturated event loop does not delay it) stops while the service's
    event loop has not turned for this long: a replica whose loop is stuck is taken over as a dead one."""
    supervise_interval_seconds: float = 2.0
    """Supervision pass period (statuses behind, deadlines); a change in live replicas wakes it at once."""
    takeover_connects: int = 32
    """Printers a takeover connects at once, each until its session is open (TLS handshake and MQTT connect
    done; the first status follows outside the slot): small waves keep every TLS handshake short on a saturated
    CPU instead of hundreds at once risking the connect timeout and backoff."""
    mute_reports_from: int = 16
    """A takeover of this many of a dead replica's printers or more mutes the reports of the printers already held
    until those taken over have reported (`PrinterDriver.mute_reports`). On a saturated CPU a survivor's share went
    to reading its own printers' reports, which repeat every second, while the printers to take over waited."""
    blocking_io_threads: int = 64
    """Threads for the drivers' blocking calls (paho's connect and TLS handshake under aiomqtt, FTPS uploads):
    more than `TAKEOVER_CONNECTS` plus the uploads that may run beside a takeover (`use_blocking_io_threads`)."""
    stale_after_seconds: float = 60.0
    dispatch_deadline_seconds: float = 600.0
    bambu_url_template: str = "ftp:///{file}"
    http_poll_seconds: float = 1.0
    """How often printers that only answer requests (PrusaLink, OctoPrint's REST) are asked for their state."""
    consumer_max_deliver: int = 12
    """A command for a printer between owners is redelivered with backoff (about a minute in all):
    longer than a takeover after a replica dies (LEASE_TTL_SECONDS plus a supervision pass)."""
    progress_write_seconds: float = 5.0
    """A status that differs only in print progress is written (and published) at most this often
    per printer; state changes are written at once."""
    control_probe_seconds: float = 60.0
    """How often a printer that refused control (developer mode off) is asked again."""
    camera_decoders: int = 4
    """At most this many X1/H2 camera streams decoded at once by this replica (one ffmpeg process each,
    running while someone watches); one more viewer of another camera gets a 409 saying so."""
