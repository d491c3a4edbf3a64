"""The protocol catalog of the nDPI that nfstream actually runs.

nfstream embeds nDPI (statically linked) in its cffi extension ``_lib_engine.abi3.so``.
The cffi ``lib`` only exposes nfstream's own engine functions, but the shared object also
exports nDPI's public API, so this module loads it with :mod:`ctypes` and asks nDPI itself
for protocol ids, names, categories, breeds and flow-risk names. Nothing is hard-coded: the
answers always match the dissector that produced the flows.

How it is read (nDPI 5.0 API, as built into nfstream 6.6):

* ``ndpi_init_detection_module(NULL)`` then ``ndpi_finalize_initialization()`` build one
  detection module; everything is copied into Python objects and the module is freed with
  ``ndpi_exit_detection_module()`` right away (the catalog is cached per process).
* ids/names: ``ndpi_get_num_protocols()``, ``ndpi_get_proto_name()``.
* category and breed of a protocol: ``ndpi_get_proto_by_id()`` returns a pointer to the
  protocol's ``ndpi_proto_defaults_t``; ``protoCategory`` is read from it. No struct is ever
  passed by value. The field offsets come from the cffi type information compiled into
  ``_lib_engine`` (so they are the compiler's, for this very build) and fall back to the
  nDPI 5.0 layout. Every record is validated against the API before it is trusted: the
  name stored in the struct must equal ``ndpi_get_proto_name(id)``, its ``protoId`` must be
  ``id`` and its ``protoBreed`` must equal ``ndpi_get_proto_breed(id)``; any mismatch raises
  :class:`NdpiCatalogError` instead of returning garbage.
* category names: ``ndpi_category_get_name()``; breed names: ``ndpi_get_proto_breed_name()``;
  risk names: ``ndpi_risk2str()`` (a risk's bit in ``FLOW_RISK`` is its ``ndpi_risk_enum``
  value).

When the shared object cannot be found or loaded, or a needed symbol is missing,
:func:`catalog` raises :class:`NdpiCatalogError` with the reason.
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from dataclasses import dataclass, field

__all__ = [
    "Catalog",
    "NdpiCatalogError",
    "Proto",
    "catalog",
    "split_app_name",
]

ENGINE_MODULE = "_lib_engine"
RISK_BITS = 64
# Upper bound for the category-id scan (nDPI 5.0 uses 0..158; ids above answer "Invalid").
_MAX_CATEGORY_ID = 512
# Upper bound for the breed-id scan (nDPI 5.0: 0 Unrated .. 7 Tracker_Ads; others "???").
_MAX_BREED_ID = 32
# Upper bound for the protocol-id scan, whatever ndpi_get_num_protocols() answers.
_MAX_PROTOCOLS = 65535

# ndpi_proto_defaults_t field offsets in nDPI 5.0 (x86-64), used only if the cffi type
# information of _lib_engine is unavailable. Validated at run time either way.
_DEFAULT_LAYOUT = {
    "protoName": 0,  # char[32]
    "protoName_len": 32,
    "protoCategory": 32,  # ndpi_protocol_category_t (enum, 4 bytes)
    "protoId": 52,  # u_int16_t
    "protoBreed": 116,  # ndpi_protocol_breed_t (enum, 4 bytes)
}


class NdpiCatalogError(RuntimeError):
    """nDPI's catalog could not be read (library missing, API mismatch, invalid data)."""


@dataclass(frozen=True)
class Proto:
    """One nDPI protocol/application as the running nDPI defines it."""

    id: int
    name: str
    category_id: int
    category: str
    breed_id: int
    breed: str


@dataclass(frozen=True)
class Catalog:
    """Everything nDPI knows by id: protocols, categories, breeds and flow risks."""

    revision: str
    api_version: int
    protocols: list[Proto]
    categories: dict[int, str]
    breeds: dict[int, str]
    risks: dict[int, str]
    #: nDPI's score (client + server) of each risk bit, as ndpi_risk2score gives it
    risk_scores: dict[int, int] = field(default_factory=dict)
    _by_id: dict[int, Proto] = field(default_factory=dict, repr=False, compare=False)
    _by_name: dict[str, Proto] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for p in self.protocols:
            self._by_id[p.id] = p
            self._by_name.setdefault(p.name.casefold(), p)

    def by_id(self, proto_id: int) -> Proto | None:
        return self._by_id.get(proto_id)

    def by_name(self, name: str) -> Proto | None:
        """Case-insensitive lookup of a single protocol name ("tls", "Google")."""
        if not isinstance(name, str):
            return None
        return self._by_name.get(name.strip().casefold())

    def category_name(self, category_id: int) -> str:
        return self.categories.get(category_id, "Unspecified")

    def risk_name(self, bit: int) -> str:
        """nDPI's name for flow-risk bit ``bit`` (0..63), like ``ndpi_risk2str``.

        Bits without a name (0 = no risk, bits past the last defined risk) give the decimal
        number, exactly as ``ndpi_risk2str`` does.
        """
        if not 0 <= bit < RISK_BITS:
            raise ValueError(f"risk bit must be in 0..{RISK_BITS - 1}, got {bit}")
        return self.risks.get(bit, str(bit))

    def risk_score(self, bitmap: int) -> int:
        """nDPI's score of a ``FLOW_RISK`` bitmap: the sum of its risks' scores (ntopng's flow SCORE)."""
        return sum(score for bit, score in self.risk_scores.items() if (bitmap >> bit) & 1)

    def risk_names(self, bitmap: int) -> list[str]:
        """Names of the risks set in a ``FLOW_RISK`` bitmap, lowest bit first."""
        return [self.risk_name(b) for b in range(RISK_BITS) if (bitmap >> b) & 1]

    def app_name(self, l7_proto: int, l7_proto_master: int = 0) -> str:
        """Inverse of :func:`split_app_name`: ids back to nDPI's "MASTER.APP" name."""
        app = self.by_id(l7_proto)
        master = self.by_id(l7_proto_master) if l7_proto_master else None
        app_n = app.name if app else "Unknown"
        if master is None or l7_proto_master == l7_proto:
            return app_n
        if l7_proto == 0:
            return master.name
        return f"{master.name}.{app_n}"

    def split_app_name(self, name: str) -> tuple[int, int]:
        """See the module-level :func:`split_app_name`."""
        if not isinstance(name, str):
            return (0, 0)
        text = name.strip()
        if not text:
            return (0, 0)
        whole = self.by_name(text)
        if whole is not None:
            return (whole.id, 0)
        parts = text.split(".")
        master_id = app_id = 0
        if len(parts) >= 2:
            # A protocol name could itself contain a dot: try every split point first.
            for i in range(1, len(parts)):
                left = self.by_name(".".join(parts[:i]))
                right = self.by_name(".".join(parts[i:]))
                if left is not None and right is not None:
                    master_id, app_id = left.id, right.id
                    break
            else:
                left = self.by_name(parts[0])
                right = self.by_name(parts[-1])
                master_id = left.id if left else 0
                app_id = right.id if right else 0
        # Normalise like nDPI's ndpi_int_change_protocol(): an unknown app takes the master's
        # id, and a master equal to the app is dropped.
        if app_id == 0 and master_id != 0:
            app_id, master_id = master_id, 0
        if master_id == app_id:
            master_id = 0
        return (app_id, master_id)


# --------------------------------------------------------------------------- loading


def engine_path() -> str:
    """Path of nfstream's ``_lib_engine`` shared object (raises NdpiCatalogError)."""
    try:
        spec = importlib.util.find_spec(ENGINE_MODULE)
    except (ImportError, ValueError) as exc:  # pragma: no cover - defensive
        raise NdpiCatalogError(f"cannot locate {ENGINE_MODULE}: {exc}") from exc
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        raise NdpiCatalogError(
            f"{ENGINE_MODULE} (nfstream's nDPI engine) is not installed; install nfstream>=6.6"
        )
    return spec.origin


def _layout() -> dict[str, int]:
    """Field offsets of ndpi_proto_defaults_t, from cffi's compiled type info if possible."""
    try:
        from _lib_engine import ffi  # type: ignore[import-not-found]

        t = "ndpi_proto_defaults_t"
        fields = dict(ffi.typeof(t).fields)
        name_type = fields["protoName"].type  # char[N]
        if name_type.kind != "array" or ffi.sizeof(name_type.item) != 1:
            raise TypeError("protoName is not a char array")
        sizes = {"protoCategory": 4, "protoBreed": 4, "protoId": 2}
        for f, size in sizes.items():
            if ffi.sizeof(fields[f].type) != size:
                raise TypeError(f"{f} is not {size} bytes")
        out = {f: ffi.offsetof(t, f) for f in ("protoName", *sizes)}
        out["protoName_len"] = ffi.sizeof(name_type)
        return out
    except Exception:  # noqa: BLE001 - any problem: fall back, validation still applies
        return dict(_DEFAULT_LAYOUT)


_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "ndpi_revision": (ctypes.c_char_p, []),
    "ndpi_get_api_version": (ctypes.c_uint, []),
    "ndpi_init_detection_module": (ctypes.c_void_p, [ctypes.c_void_p]),
    "ndpi_finalize_initialization": (ctypes.c_int, [ctypes.c_void_p]),
    "ndpi_exit_detection_module": (None, [ctypes.c_void_p]),
    "ndpi_get_num_protocols": (ctypes.c_uint, [ctypes.c_void_p]),
    "ndpi_get_proto_by_id": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_uint]),
    "ndpi_get_proto_name": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_uint16]),
    "ndpi_get_proto_breed": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint16]),
    "ndpi_get_proto_breed_name": (ctypes.c_char_p, [ctypes.c_int]),
    "ndpi_category_get_name": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int]),
    "ndpi_risk2str": (ctypes.c_char_p, [ctypes.c_int]),
    "ndpi_risk2score": (ctypes.c_uint16, [ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint16),
                                          ctypes.POINTER(ctypes.c_uint16)]),
}


def _load_library() -> ctypes.CDLL:
    path = engine_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise NdpiCatalogError(f"cannot load nDPI from {path}: {exc}") from exc
    for sym, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, sym)
        except AttributeError as exc:
            raise NdpiCatalogError(
                f"{path} does not export {sym}: unsupported nfstream/nDPI version"
            ) from exc
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def _s(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _build() -> Catalog:
    lib = _load_library()
    layout = _layout()
    revision = _s(lib.ndpi_revision())
    api_version = int(lib.ndpi_get_api_version())

    mod = lib.ndpi_init_detection_module(None)
    if not mod:
        raise NdpiCatalogError("ndpi_init_detection_module() returned NULL")
    try:
        rc = lib.ndpi_finalize_initialization(mod)
        if rc != 0:
            raise NdpiCatalogError(f"ndpi_finalize_initialization() failed (rc={rc})")
        n = int(lib.ndpi_get_num_protocols(mod))
        if not 0 < n <= _MAX_PROTOCOLS:
            raise NdpiCatalogError(f"implausible number of nDPI protocols: {n}")

        breeds: dict[int, str] = {}
        for breed_id in range(_MAX_BREED_ID):
            bname = _s(lib.ndpi_get_proto_breed_name(breed_id))
            if bname and bname != "???":
                breeds[breed_id] = bname
        categories: dict[int, str] = {}
        for cat_id in range(_MAX_CATEGORY_ID):
            cname = _s(lib.ndpi_category_get_name(mod, cat_id))
            if cname and not cname.startswith("Invalid category"):
                categories[cat_id] = cname

        protocols: list[Proto] = []
        name_off, name_len = layout["protoName"], layout["protoName_len"]
        for pid in range(n):
            addr = lib.ndpi_get_proto_by_id(mod, pid)
            if not addr:
                continue
            raw_name = ctypes.string_at(addr + name_off, name_len).split(b"\0", 1)[0]
            if not raw_name:
                continue  # unused slot
            name = _s(raw_name)
            api_name = _s(lib.ndpi_get_proto_name(mod, pid))
            struct_id = ctypes.c_uint16.from_address(addr + layout["protoId"]).value
            cat_id = ctypes.c_uint32.from_address(addr + layout["protoCategory"]).value
            breed_id = ctypes.c_uint32.from_address(addr + layout["protoBreed"]).value
            api_breed = lib.ndpi_get_proto_breed(mod, pid)
            if name != api_name or struct_id != pid or breed_id != api_breed:
                raise NdpiCatalogError(
                    "ndpi_proto_defaults_t layout does not match this nDPI build "
                    f"(id {pid}: struct says {name!r}/{struct_id}/breed {breed_id}, "
                    f"API says {api_name!r}/breed {api_breed})"
                )
            if cat_id not in categories:
                raise NdpiCatalogError(f"protocol {name} ({pid}) has unknown category {cat_id}")
            if breed_id not in breeds:
                raise NdpiCatalogError(f"protocol {name} ({pid}) has unknown breed {breed_id}")
            protocols.append(
                Proto(
                    id=pid,
                    name=name,
                    category_id=cat_id,
                    category=categories[cat_id],
                    breed_id=breed_id,
                    breed=breeds[breed_id],
                )
            )
        if not protocols or protocols[0].id != 0:
            raise NdpiCatalogError("nDPI returned no protocols (or no 'Unknown' at id 0)")

        risks: dict[int, str] = {}
        risk_scores: dict[int, int] = {}
        client, server = ctypes.c_uint16(), ctypes.c_uint16()
        for bit in range(RISK_BITS):
            rname = _s(lib.ndpi_risk2str(bit))
            if rname and rname != str(bit):
                risks[bit] = rname
                score = int(lib.ndpi_risk2score(1 << bit, ctypes.byref(client), ctypes.byref(server)))
                if score:
                    risk_scores[bit] = score
    finally:
        lib.ndpi_exit_detection_module(mod)

    return Catalog(
        revision=revision,
        api_version=api_version,
        protocols=protocols,
        categories=categories,
        breeds=breeds,
        risks=risks,
        risk_scores=risk_scores,
    )


_lock = threading.Lock()
_cached: Catalog | None = None


def catalog() -> Catalog:
    """The running nDPI's catalog (built once per process; raises NdpiCatalogError)."""
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = _build()
    return _cached


def split_app_name(name: str) -> tuple[int, int]:
    """nfstream's ``application_name`` -> ``(L7_PROTO, L7_PROTO_MASTER)`` like ntopng.

    nfstream names a flow the way nDPI's ``ndpi_protocol2name()`` does: ``"MASTER.APP"``
    when nDPI found both a carrier and an application (``"TLS.Google"``, ``"DNS.WhatsApp"``,
    ``"QUIC.YouTube"``) and a single name otherwise (``"DNS"``, ``"HTTP"``, ``"Unknown"``).

    ntopng's flow tables (ClickHouse ``flows``, and its JSON/MySQL exports, which write
    ``L7_PROTO = ndpiDetectedProtocol.app_protocol``) keep nDPI's two ids apart:
    ``L7_PROTO`` is the application (``app_protocol``) and ``L7_PROTO_MASTER`` the carrier
    (``master_protocol``), 0 when there is none. So:

    * ``"TLS.Google"`` -> ``(Google, TLS)`` = ``(126, 91)``
    * ``"DNS"``        -> ``(DNS, 0)``      = ``(5, 0)``
    * ``"Unknown"`` or ``""`` -> ``(0, 0)``

    Names are matched case-insensitively against the running nDPI. An unknown component
    counts as 0 (``NDPI_PROTOCOL_UNKNOWN``), then the pair is normalised the way nDPI
    itself does: if only the master is known it becomes the application (``(master, 0)``),
    and a master equal to the application is dropped. Three-part names (a protocol whose
    own name has a dot) are resolved by trying every split point.
    """
    return catalog().split_app_name(name)
