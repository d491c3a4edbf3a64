"""The asset inventory in ClickHouse: latest identity wins, changes are kept, restarts keep it all."""

from __future__ import annotations

import types

from flowscope.services.hosts import HostsService
from flowscope.services.hosts.geo import Geo, enrich_flow_rows
from flowscope.store import Store
from fsharness import corpus_pcap


def fake_app(data_dir: str):
    store = Store(data_dir)
    store.migrate()
    cfg = types.SimpleNamespace(local_networks=["192.168.0.0/16", "fe80::/10"], section=lambda name: {})
    return types.SimpleNamespace(store=store, config=cfg, components={})


def test_assets_survive_a_restart(tmp_path):
    app = fake_app(str(tmp_path))
    svc = HostsService(app)
    svc.learn_file(str(corpus_pcap("wechat.pcap")))
    svc.learn_file(str(corpus_pcap("teams.pcap")))
    before = {r["key"]: r for r in app.store.query("SELECT * FROM assets FINAL").dicts()}
    assert before["192.168.1.106@0"]["name"] == "iPhonediMonica"
    assert before["b8:78:2e:e2:da:07"]["manufacturer"] == "Apple, Inc."
    assert before["10:13:31:f1:39:76"]["type"] == "network_device"
    app.store.close()

    app2 = fake_app(str(tmp_path))  # a new Store on the same data dir
    try:
        svc2 = HostsService(app2)
        assert svc2.loaded == len(before)
        after = {r["key"]: r for r in app2.store.query("SELECT * FROM assets FINAL").dicts()}
        assert after == before
        h = svc2.model.get_host("192.168.1.106", 0)[0]
        assert (h.name, h.mac, h.os, h.device_type) == ("iPhonediMonica", "b8:78:2e:e2:da:07", "iOS", "phone")
        assert h.names["iPhonediMonica"][0] == "dhcp" and not h.dirty
        # nothing changed: a flush writes nothing
        assert svc2.flush() == 0
    finally:
        app2.store.close()


def test_latest_identity_wins_and_history_is_kept(tmp_path):
    app = fake_app(str(tmp_path))
    try:
        svc = HostsService(app)
        m = svc.model
        m.observe_dhcp("3c:52:82:00:00:01", "192.168.9.9", 1_700_000_000.0, hostname="old-name",
                       vendor_class="MSFT 5.0")
        svc.flush()
        m.observe_dhcp("3c:52:82:00:00:01", "192.168.9.9", 1_700_000_100.0, hostname="new-name")
        # the newer DHCP name is as trusted and more recent: it wins
        svc.flush()
        rows = app.store.query("SELECT name, os, version FROM assets FINAL WHERE key = {k:String}",
                               {"k": "192.168.9.9@0"}).dicts()
        assert len(rows) == 1 and rows[0]["name"] == "new-name" and rows[0]["os"] == "Windows"
        versions = app.store.query("SELECT count() FROM assets WHERE key = {k:String}", {"k": "192.168.9.9@0"}).scalar()
        assert versions >= 1
        hist = app.store.query("SELECT field, old_value, new_value FROM asset_history WHERE key = {k:String} "
                               "ORDER BY changed_at, field", {"k": "192.168.9.9@0"}).rows
        assert ["name", "old-name", "new-name"] in hist
        assert ["name", "", "old-name"] in hist
        assert ["mac", "", "3c:52:82:00:00:01"] in hist
        # scores from the alerts engine
        m.set_score("192.168.9.9", 0, score=42, alerts=3)
        svc.flush()
        r = app.store.query("SELECT score, alerts FROM assets FINAL WHERE key = '192.168.9.9@0'").dicts()[0]
        assert (r["score"], r["alerts"]) == (42, 3)
    finally:
        app.store.close()


def test_enrich_flow_rows_fills_country_only_for_public_addresses():
    rows = [{"IP_PROTOCOL_VERSION": 4, "SRC_IP": "192.168.1.5", "DST_IP": "8.8.8.8", "SRC_COUNTRY_CODE": "",
             "DST_COUNTRY_CODE": "", "SRC_ASN": 0, "DST_ASN": 0},
            {"IP_PROTOCOL_VERSION": 6, "IPV6_SRC_ADDR": "2001:4860:4860::8888", "IPV6_DST_ADDR": "fe80::1"},
            {"IP_PROTOCOL_VERSION": 4, "IPV4_SRC_ADDR": 0x34724d21, "IPV4_DST_ADDR": 0x0a000001,
             "SRC_COUNTRY_CODE": "ZZ"}]
    enrich_flow_rows(rows)
    assert rows[0]["DST_COUNTRY_CODE"] == "US" and rows[0]["SRC_COUNTRY_CODE"] == ""
    assert rows[1]["SRC_COUNTRY_CODE"] == "US" and not rows[1].get("DST_COUNTRY_CODE")
    assert rows[2]["SRC_COUNTRY_CODE"] == "ZZ"  # never overwritten


def test_builtin_geo_gives_country_and_as_name():
    g = Geo()
    info = g.lookup("52.114.77.33")
    assert info.country_code == "IE" and "MICROSOFT" in info.as_name and info.source == "geoip2fast"
    assert g.lookup("10.1.2.3").country_code == ""


def test_maxmind_database_is_used_when_configured(tmp_path):
    import mmdb_writer  # a test dependency (pyproject [test])
    from netaddr import IPSet

    path = str(tmp_path / "test-country.mmdb")
    w = mmdb_writer.MMDBWriter(ip_version=4, database_type="GeoIP2-City")
    w.insert_network(IPSet(["8.8.8.0/24"]), {"country": {"iso_code": "FR", "names": {"en": "France"}},
                                             "city": {"names": {"en": "Paris"}}})
    w.to_db_file(path)
    apath = str(tmp_path / "test-asn.mmdb")
    a = mmdb_writer.MMDBWriter(ip_version=4, database_type="GeoLite2-ASN")
    a.insert_network(IPSet(["8.8.8.0/24"]), {"autonomous_system_number": 64500,
                                             "autonomous_system_organization": "Example AS"})
    a.to_db_file(apath)
    g = Geo(geoip_db=path, asn_db=apath)
    info = g.lookup("8.8.8.8")  # the user's database wins over the built-in one
    assert (info.country_code, info.city, info.asn, info.as_name, info.source) == \
        ("FR", "Paris", 64500, "Example AS", "maxmind")
    info = g.lookup("52.114.77.33")  # not in the user's file: the built-in database answers
    assert info.country_code == "IE" and info.asn == 0 and info.source == "geoip2fast"
