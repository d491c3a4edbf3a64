"""The nDPI catalog read from nfstream's embedded nDPI (flowscope.flows.ndpi_catalog)."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fsharness import unavailable

from flowscope.flows import ndpi_catalog as nc

CORPUS_EXPECTED = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "pcap-expected"


@pytest.fixture(scope="module")
def cat() -> nc.Catalog:
    return nc.catalog()


def test_revision_and_size(cat):
    assert re.match(r"^\d+\.\d+", cat.revision), cat.revision
    assert cat.api_version > 0
    assert len(cat.protocols) > 300
    assert cat.protocols[0].id == 0 and cat.protocols[0].name == "Unknown"
    assert nc.catalog() is cat  # cached


@pytest.mark.parametrize(
    ("name", "pid", "category"),
    [
        ("Unknown", 0, "Unspecified"),
        ("DNS", 5, "Network"),
        ("HTTP", 7, "Web"),
        ("NTP", 9, "System"),
        ("ICMP", 81, "Network"),
        ("TLS", 91, "Web"),
        ("SSH", 92, "RemoteAccess"),
        ("ICMPV6", 102, "Network"),
        ("YouTube", 124, "Media"),
        ("Google", 126, "Web"),
        ("WhatsApp", 142, "Chat"),
        ("Amazon", 178, "Web"),
        ("QUIC", 188, "Web"),
        ("OpenVPN", 159, "VPN"),
    ],
)
def test_known_protocols(cat, name, pid, category):
    p = cat.by_name(name)
    assert p is not None, name
    assert (p.id, p.name, p.category) == (pid, name, category)
    assert cat.by_id(pid) is p
    assert cat.categories[p.category_id] == category


def test_by_name_is_case_insensitive(cat):
    assert cat.by_name("tls").id == 91
    assert cat.by_name("  Dns ").id == 5
    assert cat.by_name("icmpv6").name == "ICMPV6"
    assert cat.by_name("no-such-protocol") is None
    assert cat.by_id(60000) is None


def test_round_trip_all(cat):
    ids = [p.id for p in cat.protocols]
    assert len(ids) == len(set(ids))
    assert len({p.name.casefold() for p in cat.protocols}) == len(cat.protocols)
    for p in cat.protocols:
        assert cat.by_id(p.id) is p
        assert cat.by_name(p.name) is p
        assert cat.by_name(p.name.upper()) is p
        assert p.category == cat.categories[p.category_id]
        assert p.breed == cat.breeds[p.breed_id]
        assert cat.split_app_name(p.name) == (p.id, 0)


def test_categories_and_breeds(cat):
    for cid, name in {
        0: "Unspecified",
        1: "Media",
        2: "VPN",
        3: "Email",
        5: "Web",
        9: "Chat",
        13: "Cloud",
        14: "Network",
        18: "System",
        31: "IoT-Scada",
        100: "Malware",
    }.items():
        assert cat.categories[cid] == name
    assert cat.category_name(9999) == "Unspecified"
    assert cat.breeds[0] == "Unrated"
    assert cat.breeds[1] == "Safe"
    assert cat.breeds[2] == "Acceptable"
    assert cat.breeds[6] == "Dangerous"
    assert cat.by_name("TLS").breed == "Safe"
    assert cat.by_name("YouTube").breed == "Fun"


def test_risk_names(cat):
    assert cat.risk_name(1) == "XSS Attack"
    assert cat.risk_name(2) == "SQL Injection"
    assert cat.risk_name(5) == "Known Proto on Non Std Port"
    assert cat.risk_name(11) == "HTTP Susp User-Agent"
    assert cat.risk_name(46) == "Unidirectional Traffic"
    assert cat.risk_name(0) == "0"  # no risk: ndpi_risk2str gives the number
    assert cat.risk_name(63) == "63"
    assert 0 not in cat.risks and len(cat.risks) >= 50
    assert all(0 < b < 64 for b in cat.risks)
    assert cat.risk_names((1 << 1) | (1 << 46)) == ["XSS Attack", "Unidirectional Traffic"]
    with pytest.raises(ValueError):
        cat.risk_name(64)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("TLS.Google", (126, 91)),
        ("tls.google", (126, 91)),
        ("TLS.Amazon", (178, 91)),
        ("QUIC.YouTube", (124, 188)),
        ("DNS.WhatsApp", (142, 5)),
        ("DNS", (5, 0)),
        ("HTTP", (7, 0)),
        ("ICMPV6", (102, 0)),
        ("Unknown", (0, 0)),
        ("", (0, 0)),
        ("Nonsense.AlsoNonsense", (0, 0)),
        ("TLS.NoSuchApp", (91, 0)),  # only the master is known: it becomes the app
        ("HTTP.HTTP", (7, 0)),
    ],
)
def test_split_app_name(name, expected):
    assert nc.split_app_name(name) == expected


def test_app_name_inverse(cat):
    assert cat.app_name(126, 91) == "TLS.Google"
    assert cat.app_name(5) == "DNS"
    assert cat.app_name(0, 0) == "Unknown"
    for n in ("TLS.Google", "QUIC.YouTube", "DNS", "Unknown"):
        assert cat.app_name(*nc.split_app_name(n)) == n


def test_category_matches_ndpi_get_proto_category_by_value():
    """ndpi_get_proto_category() (struct passed by value) agrees with the catalog.

    Runs in a child process so a calling-convention problem cannot take pytest down.
    """
    code = textwrap.dedent(
        """
        import ctypes
        from _lib_engine import ffi
        from flowscope.flows import ndpi_catalog as nc
        c = nc.catalog()
        lib = ctypes.CDLL(nc.engine_path())
        size = ffi.sizeof("ndpi_protocol")
        assert size % 8 == 0
        class P(ctypes.Structure):
            _fields_ = [("w", ctypes.c_uint64 * (size // 8))]
        vp = ctypes.c_void_p
        lib.ndpi_init_detection_module.restype = vp
        lib.ndpi_init_detection_module.argtypes = [vp]
        lib.ndpi_finalize_initialization.argtypes = [vp]
        lib.ndpi_exit_detection_module.argtypes = [vp]
        lib.ndpi_exit_detection_module.restype = None
        lib.ndpi_get_proto_category.restype = ctypes.c_int
        lib.ndpi_get_proto_category.argtypes = [vp, P]
        m = lib.ndpi_init_detection_module(None)
        assert m and lib.ndpi_finalize_initialization(m) == 0
        bad = []
        for p in c.protocols:
            buf = ffi.new("ndpi_protocol *")
            buf.proto.app_protocol = p.id
            got = lib.ndpi_get_proto_category(m, P.from_buffer_copy(ffi.buffer(buf)))
            if got != p.category_id:
                bad.append((p.id, p.category_id, got))
        lib.ndpi_exit_detection_module(m)
        print(len(c.protocols), len(bad), bad[:5])
        """
    )
    try:
        import _lib_engine  # noqa: F401

        _lib_engine.ffi.sizeof("ndpi_protocol")
    except Exception:  # noqa: BLE001
        unavailable("cffi type info for ndpi_protocol not available")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    total, nbad, sample = out.stdout.split(" ", 2)
    assert int(total) > 300
    assert int(nbad) == 0, sample


def test_missing_library_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(nc, "ENGINE_MODULE", "_no_such_engine_module_xyz")
    with pytest.raises(nc.NdpiCatalogError, match="not installed"):
        nc.engine_path()


_PROTO_RE = re.compile(r"\[(?:proto|IP): ([0-9.]+)/([^\]]+)\]")
_CAT_RE = re.compile(r"\[cat: ([^\]/]+)/(\d+)\]")


def test_ids_agree_with_ndpireader_reference_outputs(cat):
    """ids/names in nDPI's own regression outputs (ndpiReader -v 2) mostly agree.

    Those outputs come from a somewhat different nDPI revision (e.g. they still have
    Skype_Teams=125 and ADS_Analytic_Track=107) and the ids >= 438 named CustomProtocolX
    come from the test suite's custom-protocol file, so the check is "almost all", not all.
    """
    if not CORPUS_EXPECTED.is_dir():
        unavailable("shared corpus not present (../shared/corpus)")
    pairs: collections.Counter = collections.Counter()
    cats: collections.Counter = collections.Counter()
    for f in sorted(CORPUS_EXPECTED.glob("*.out")):
        for line in f.read_text(errors="replace").splitlines():
            for m in _PROTO_RE.finditer(line):
                ids, names = m.group(1).split("."), m.group(2).split(".")
                if len(ids) == len(names):
                    for i, n in zip(ids, names):
                        if not n.startswith("CustomProtocol"):
                            pairs[(int(i), n)] += 1
            for m in _CAT_RE.finditer(line):
                cats[(int(m.group(2)), m.group(1))] += 1
    assert len(pairs) > 100
    agree = [k for k in pairs if (p := cat.by_id(k[0])) is not None and p.name == k[1]]
    share = len(agree) / len(pairs)
    weighted = sum(pairs[k] for k in agree) / sum(pairs.values())
    assert share >= 0.95, sorted(set(pairs) - set(agree))
    assert weighted >= 0.97
    assert cats and all(cat.categories.get(cid) == name for cid, name in cats)


def test_fallback_layout_matches_this_build():
    """The hard-coded nDPI 5.0 offsets (used without cffi type info) match the real ones."""
    assert nc._layout() == nc._DEFAULT_LAYOUT


def test_risk_score_is_ndpis_own():
    import ctypes

    from flowscope.flows.ndpi_catalog import _load_library, catalog

    lib, cat = _load_library(), catalog()
    client, server = ctypes.c_uint16(), ctypes.c_uint16()
    for bitmap in (0, 1 << 2, (1 << 2) | (1 << 12) | (1 << 14), (1 << 56) - 2):
        assert cat.risk_score(bitmap) == lib.ndpi_risk2score(bitmap, ctypes.byref(client), ctypes.byref(server))
    assert cat.risk_score((1 << 2) | (1 << 12) | (1 << 14)) == 260  # as ndpiReader scores SQL injection flows
