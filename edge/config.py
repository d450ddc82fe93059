"""Station configuration: one TOML file, validated by pydantic.

Every section is a model that forbids unknown keys, so a misspelt key is an
error that names the file, the key and the reason instead of a silently
ignored setting. Devices are picked by a ``type`` key (a discriminated union):
a new kind of scale or printer adds a class here, not an ``if`` elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edge.defaults import GRADING_RULES, PRINTER_PROFILES, SCALE_PROFILES
from edge.netaddr import is_loopback_host
from edge.tomlfile import known_zone, read_toml, unknown_key

if TYPE_CHECKING:
    from edge.printer.profiles import PrinterProfile
    from edge.printer.uri import PrinterUri
    from edge.scale.profiles import DriverSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Section):
    id: str = Field(
        "demo-site",
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Site id used in MQTT topics and record ids: lower-case letters, digits, '-'.",
    )
    name: str = Field(
        "Điểm thu gom mẫu",
        min_length=1,
        description="Name printed on labels (the labels' text rule: edge.printer.printable).",
    )
    timezone: str = Field(
        "Asia/Ho_Chi_Minh", description="Zone for dates on labels and for 'today' on the page."
    )
    key_file: Path = Field(
        Path("var/site.key"),
        description="The site's secret key signing label QR codes; created (0600) if missing.",
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        """On every label: a character no label can print would stop them all."""
        from edge.printer.printable import printable_text

        return printable_text(value, 1000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


class _ScaleCommon(_Section):
    """Keys both kinds of scale share: the family, its profile, and overrides."""

    protocol: str | None = Field(
        None,
        description="Frame family (edge.scale.protocols); default: the profile's, else stgs.",
    )
    profiles_dir: Path | None = Field(
        SCALE_PROFILES,
        description="Folder of scale profiles; default: the ones shipped in the package "
        "(edge/defaults/scales).",
    )
    profile: str | None = Field(
        None,
        validate_default=True,
        description="Scale profile: a name in profiles_dir (e.g. 'xk3190-w') or a .toml path; "
        "default: the family's own <protocol>.toml when present.",
    )
    poll_rate_hz: float | None = Field(
        None, gt=0, le=50, description="(polled families) poll commands per second."
    )
    stale_after_s: float | None = Field(
        None, gt=0, description="No valid frame for this long = offline (default: the profile's)."
    )
    unit: str | None = Field(
        None,
        description="The unit the indicator shows (kg, g, lb...), for frames that carry none "
        "until one does (SBI while unstable); default: the profile's.",
    )
    wire_log: Path | None = Field(
        None, description="Log every byte in and out of the port to this file (off by default)."
    )

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str | None) -> str | None:
        if value is not None:
            from edge.scale.protocols import get_protocol

            get_protocol(value)  # ValueError naming the known families
        return value

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        from edge.scale.profiles import known_unit

        return known_unit(value)

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The profile (or the family's own) must exist, be valid and match ``protocol``."""
        from edge.scale.profiles import find_profile

        if "protocol" not in info.data or "profiles_dir" not in info.data:
            return value  # those keys have their own errors
        protocol, folder = info.data["protocol"], info.data["profiles_dir"]
        found = find_profile(value, protocol, folder)  # ProfileError is a ValueError
        if found and protocol is not None and found[0].protocol != protocol:
            raise ValueError(
                f"{found[1]} is for protocol {found[0].protocol!r}, not {protocol!r}; "
                "remove scale.protocol or choose another profile"
            )
        return value

    def line_overrides(self) -> dict[str, Any]:
        return {}

    def driver_settings(self) -> DriverSettings:
        """Profile, protocol defaults and this section's overrides, merged."""
        from edge.scale.profiles import driver_settings

        return driver_settings(
            profile=self.profile,
            profiles_dir=self.profiles_dir,
            protocol=self.protocol,
            line=self.line_overrides(),
            poll_rate_hz=self.poll_rate_hz,
            stale_after_s=self.stale_after_s,
            unit=self.unit,
        )


class SimulatedScaleConfig(_ScaleCommon):
    type: Literal["simulated"] = "simulated"
    link: Path = Field(
        Path("var/scale-sim"),
        description="Symlink the simulator keeps pointing at its pseudo-terminal.",
    )
    initial_weight_g: int = Field(0, description="Weight on the simulated scale at start.")
    interval_s: float = Field(0.1, gt=0, le=5, description="Seconds between streamed frames.")


class SerialScaleConfig(_ScaleCommon):
    type: Literal["serial"]
    port: str = Field(description="Serial device, ideally a /dev/serial/by-id/... name.")
    baudrate: int | None = Field(None, gt=0, description="Line speed (default: the profile's).")
    bytesize: Literal[7, 8] | None = None
    parity: Literal["N", "E", "O"] | None = None
    stopbits: Literal[1, 2] | None = None

    def line_overrides(self) -> dict[str, Any]:
        return {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
        }


ScaleConfig = Annotated[SimulatedScaleConfig | SerialScaleConfig, Field(discriminator="type")]


class _PrinterCommon(_Section):
    """Keys every kind of printer shares: its profile and how its status is asked."""

    profiles_dir: Path | None = Field(
        PRINTER_PROFILES,
        description="Folder of printer profiles; default: the ones shipped in the package "
        "(edge/defaults/printers).",
    )
    profile: str | None = Field(
        None,
        validate_default=True,
        description="Printer profile: a name in profiles_dir (e.g. 'epson-tm-t20ii') or a "
        ".toml path; default: generic-58mm.",
    )
    paper_dots: Literal[384, 576, 800] = Field(
        384,
        description="Printable width: 58 mm=384, 80 mm=576, 100 mm (100x150 labels)=800; "
        "default: the profile's.",
    )
    native_text: Literal["none", "tcvn3", "cp1258"] | None = Field(
        None,
        validate_default=True,
        description="Print text jobs in the printer's own code page; default: the profile's.",
    )
    status_timeout_s: float = Field(
        0.5, gt=0, le=10, description="Wait this long for each status reply; none = unknown."
    )

    @model_validator(mode="before")
    @classmethod
    def _profile_paper(cls, data: Any) -> Any:
        """Without ``paper_dots``, the profile's (a broken profile is reported below)."""
        if isinstance(data, dict) and "paper_dots" not in data:
            from edge.printer.profiles import find_profile

            try:
                ref, folder = data.get("profile"), data.get("profiles_dir")
                profile = find_profile(ref, Path(folder) if folder is not None else None)
            except (ValueError, TypeError):
                return data
            return {**data, "paper_dots": profile.paper_dots}
        return data

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, value: str | None, info: ValidationInfo) -> str | None:
        from edge.printer.profiles import find_profile

        if "profiles_dir" in info.data:
            find_profile(value, info.data["profiles_dir"])  # PrinterProfileError: ValueError
        return value

    @field_validator("native_text")
    @classmethod
    def _pages_known(cls, value: str | None, info: ValidationInfo) -> str | None:
        from edge.printer.profiles import find_profile, with_native_text

        if value is not None and "profile" in info.data and "profiles_dir" in info.data:
            profile = find_profile(info.data["profile"], info.data["profiles_dir"])
            with_native_text(profile, value)
        return value

    def printer_profile(self) -> PrinterProfile:
        """The profile, with this section's ``native_text`` applied."""
        from edge.printer.profiles import find_profile, with_native_text

        return with_native_text(find_profile(self.profile, self.profiles_dir), self.native_text)


class FilePrinterConfig(_PrinterCommon):
    type: Literal["file"] = "file"
    dir: Path = Field(Path("var/prints"), description="Folder for each job's .bin and .png.")

    def printer_uri(self) -> PrinterUri:
        from edge.printer.uri import FileUri

        return FileUri(self.dir, folder=True)


class NetworkPrinterConfig(_PrinterCommon):
    type: Literal["network"]
    host: str = Field(description="Printer address (raw TCP, port 9100 style).")
    port: int = Field(9100, ge=1, le=65535)
    timeout_s: float = Field(5.0, gt=0)

    def printer_uri(self) -> PrinterUri:
        from edge.printer.uri import TcpUri

        return TcpUri(self.host, self.port, self.timeout_s)


class UriPrinterConfig(_PrinterCommon):
    type: Literal["uri"] = "uri"
    uri: str = Field(
        description="tcp://host:port, usb://vid:pid, serial:///dev/...?baud=N, file:///path "
        "or cups://queue (edge.printer.uri)."
    )

    @field_validator("uri")
    @classmethod
    def _uri_parses(cls, value: str) -> str:
        from edge.printer.uri import parse_printer_uri

        parse_printer_uri(value)  # PrinterUriError (a ValueError) names the wrong part
        return value

    def printer_uri(self) -> PrinterUri:
        from edge.printer.uri import parse_printer_uri

        return parse_printer_uri(self.uri)


def _printer_type(value: Any) -> str:
    """The [printer] member: ``type``, else "uri" when a ``uri`` is given, else "file"."""
    if isinstance(value, dict):
        return str(value.get("type", "uri" if "uri" in value else "file"))
    return str(getattr(value, "type", "file"))


PrinterConfig = Annotated[
    Annotated[FilePrinterConfig, Tag("file")]
    | Annotated[NetworkPrinterConfig, Tag("network")]
    | Annotated[UriPrinterConfig, Tag("uri")],
    Discriminator(_printer_type),
]


class TlsConfig(_Section):
    """Mutual TLS: the broker's CA, and this site's certificate and key (CN = site id)."""

    ca_file: Path = Field(description="CA certificate(s) that signed the broker's certificate.")
    cert_file: Path = Field(description="This site's client certificate (PEM).")
    key_file: Path = Field(description="This site's private key (PEM), mode 0600.")
    server_hostname: str | None = Field(
        None, description="Name to check in the broker's certificate (default: host)."
    )


class MqttConfig(_Section):
    enabled: bool = Field(False, description="Off: records wait in the outbox.")
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = Field("edge", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    keepalive_s: int = Field(
        1800,
        ge=5,
        le=3600,
        description="MQTT keepalive; long, as every ping costs bytes (paho pings this often "
        "even while batches flow). Lower it where the carrier's NAT drops idle connections "
        "sooner: a dropped connection costs a reconnect when the next batch leaves.",
    )
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = Field(
        None,
        description="Mutual TLS. Without it the link is plain MQTT, which the station only "
        "runs to a broker on this machine, or with insecure_plaintext = true.",
    )
    insecure_plaintext: bool = Field(
        False,
        validate_default=True,
        description="Run plain MQTT (no [mqtt.tls]) to a broker on another machine: records "
        "cross the network readable and forgeable. Only on a trusted test network; the "
        "station then warns in its log, on its page and in telemetry.",
    )
    batch_max_records: int = Field(
        100, ge=1, le=5000, description="Records packed into one batch at most."
    )
    batch_max_age_s: float = Field(
        900.0,
        ge=0,
        le=3600,
        description="A partial batch leaves once its oldest record is this old (each batch "
        "costs about 0.85 kB on the wire besides its records: 15 minutes keeps a station "
        "under 3 MB a month).",
    )
    max_inflight_batches: int = Field(
        20, ge=1, le=20, description="Batches published but not yet PUBACKed, at most."
    )
    ack_timeout_s: float = Field(
        60.0, gt=0, le=86400, description="A sent batch unconfirmed this long is sent again."
    )
    confirmed_retention_days: float = Field(
        30.0, ge=0, description="Confirmed outbox rows are pruned after this many days."
    )
    reconnect_min_s: float = Field(1.0, gt=0, le=3600)
    reconnect_max_s: float = Field(300.0, gt=0, le=86400)
    connect_every_min: float = Field(
        0.0, ge=0, description="0: stay connected. Else connect every N minutes to drain."
    )
    connect_backlog: int = Field(
        0, ge=0, description="With a schedule: connect early when this many records wait (0: off)."
    )
    monthly_budget_mb: float = Field(
        0.0, ge=0, description="0: none. Else low-priority streams stop near this MB a month."
    )
    telemetry_every_s: float = Field(
        3600.0, ge=10, le=86400, description="Telemetry period (about 0.9 kB a record on the wire)."
    )

    @field_validator("insecure_plaintext")
    @classmethod
    def _plaintext_said(cls, value: bool, info: ValidationInfo) -> bool:
        """Plain MQTT off this machine only when the file says so."""
        data = info.data
        if value or not data.get("enabled") or "tls" not in data or "host" not in data:
            return value  # (a bad tls or host section has its own error)
        if data["tls"] is None and not is_loopback_host(data["host"]):
            raise PydanticCustomError(
                "plaintext_refused",
                "no [mqtt.tls] section, and the broker {host} is not on this machine: records "
                "would cross the network unencrypted, and anyone on the way could read or "
                "forge them. Add [mqtt.tls] (edge certs site <site.id> makes the files), or, "
                "only on a trusted test network, set insecure_plaintext = true",
                {"host": repr(data["host"])},
            )
        return value

    @property
    def plaintext_off_host(self) -> bool:
        """The link runs plain MQTT (no TLS) to a broker on another machine."""
        return self.enabled and self.tls is None and not is_loopback_host(self.host)

    @model_validator(mode="after")
    def _backoff_order(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self


class StorageConfig(_Section):
    path: Path = Field(Path("var/station.db"), description="SQLite database file.")
    backup_dir: Path | None = Field(
        None, description="Where pre-migration copies go (default: beside the database)."
    )
    min_free_mb: int = Field(
        200, ge=0, description="Below this much free disk the station reports 'disk nearly full'."
    )


class CameraConfig(_Section):
    type: Literal["none", "simulated", "v4l2"] = Field(
        "simulated", description="none: uploads only; simulated: generated trays; v4l2: OpenCV."
    )
    device: str = Field("/dev/video0", description="V4L2 device path or index (v4l2 only).")
    width: int = Field(1280, ge=160, le=8192)
    height: int = Field(960, ge=120, le=8192)
    photos_dir: Path = Field(Path("var/photos"), description="JPEGs and thumbnails.")
    jpeg_quality: int = Field(88, ge=30, le=100)
    thumb_px: int = Field(320, ge=64, le=1024, description="Long side of a thumbnail.")
    max_photos_mb: int = Field(
        2048, ge=1, description="Photos above this total: oldest of confirmed lots deleted first."
    )
    marker_mm: float = Field(40.0, gt=0, le=500, description="ArUco marker side.")
    max_upload_mb: int = Field(15, ge=1, le=100, description="Largest phone photo accepted.")
    max_upload_megapixels: int = Field(
        16, ge=1, le=50, description="Most pixels an upload may have (checked before decoding)."
    )
    decode_concurrency: int = Field(
        2, ge=1, le=4, description="Photos decoded and graded at once (20-60 MB each at the peak)."
    )
    upload_buffer_mb: int = Field(
        64, ge=1, le=1024, description="Upload bodies held in memory at once, all phones together."
    )
    busy_wait_s: float = Field(
        20.0, gt=0, le=300, description="An upload waits this long for its turn, then 503 busy."
    )


class GradingConfig(_Section):
    rules_dir: Path = Field(
        GRADING_RULES,
        description="Folder of <product>.toml grade rules; default: the ones shipped in the "
        "package (edge/defaults/grading).",
    )
    models_dir: Path = Field(
        Path("var/grading"), description="Calibrated <product>.json models; override rules."
    )


class WebConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    max_body_kb: int = Field(64, ge=1, le=1024)
    """Largest request body but a photo's (``camera.max_upload_mb``), refused unread."""
    session_hours: float = Field(12.0, gt=0, le=24)
    """A sign-in lasts one shift: the session cookie expires this many hours after it."""
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = []
    """Host names (besides IP addresses, localhost and this machine's name and
    ``<name>.local``) the page may be opened by; any other Host is refused."""


class StationConfig(_Section):
    site: SiteConfig = SiteConfig()
    scale: ScaleConfig = SimulatedScaleConfig()
    printer: PrinterConfig = FilePrinterConfig()
    mqtt: MqttConfig = MqttConfig()
    storage: StorageConfig = StorageConfig()
    web: WebConfig = WebConfig()
    camera: CameraConfig = CameraConfig()
    grading: GradingConfig = GradingConfig()


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` are (key, reason) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        lines = [f"{file}: {key}: {reason}" for key, reason in problems]
        super().__init__("\n".join(lines))


# section -> {union tag: model}; plain sections have the single tag None
_SECTIONS: dict[str, dict[str | None, type[BaseModel]]] = {
    "site": {None: SiteConfig},
    "scale": {"simulated": SimulatedScaleConfig, "serial": SerialScaleConfig},
    "printer": {
        "file": FilePrinterConfig,
        "network": NetworkPrinterConfig,
        "uri": UriPrinterConfig,
    },
    "mqtt": {None: MqttConfig},
    "storage": {None: StorageConfig},
    "web": {None: WebConfig},
    "camera": {None: CameraConfig},
    "grading": {None: GradingConfig},
}


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model an error location points into; union members carry their tag in loc[1]."""
    if len(loc) < 2:
        return StationConfig
    models = _SECTIONS.get(str(loc[0]), {})
    return models.get(None) or models.get(str(loc[1]))


def _key_path(loc: tuple[Any, ...]) -> str:
    """("scale", "serial", "port") -> "scale.port": drop the union tag pydantic inserts."""
    parts = list(loc)
    if len(parts) > 2 and len(_SECTIONS.get(str(parts[0]), [])) > 1:
        del parts[1]
    return ".".join(str(p) for p in parts) or "(top level)"


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            model = _section_model(loc)
            known = list(model.model_fields) if model else []
            reason = unknown_key(str(loc[-1]), known)
        elif err["type"] == "missing":
            reason = "required key is missing"
        elif err["type"] == "plaintext_refused":
            reason = err["msg"]  # says what to do; the value (false) tells nothing
        else:
            msg = err["msg"].removeprefix("Value error, ")
            reason = f"{msg} (got {err.get('input')!r})"
        problems.append((_key_path(loc), reason))
    return problems


def parse_config(data: dict[str, Any], file: str = "<config>") -> StationConfig:
    try:
        return StationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, _describe(exc)) from None


def load_config(path: Path | None) -> StationConfig:
    """Read and validate a station file; ``None`` gives the embedded default."""
    if path is None:
        return StationConfig()
    return parse_config(read_toml(path, ConfigError), str(path))
