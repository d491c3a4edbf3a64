"""Rate computation across counter wraps, counter resets and agent restarts."""

from flowscope.services.snmp.rates import C32, CounterSample, agent_restarted, compute_rates, counter_delta

GBIT = 1_000_000_000


def sample(t, uptime, inn, out, bits=32, speed=GBIT, **kw):
    return CounterSample(time=t, uptime_ticks=uptime, speed_bps=speed, octet_bits=bits, in_octets=inn,
                         out_octets=out, in_errors=kw.get("ie", 0), out_errors=kw.get("oe", 0),
                         in_discards=kw.get("idc", 0), out_discards=kw.get("odc", 0),
                         discontinuity=kw.get("disc"), in_pkts=kw.get("ip"), out_pkts=kw.get("op"))


def test_plain_rates_and_utilisation():
    a = sample(1000.0, 100_000, 1_000_000, 2_000_000, ie=5)
    b = sample(1060.0, 106_000, 1_000_000 + 75_000_000, 2_000_000 + 7_500_000, ie=65)
    r = compute_rates(a, b)
    assert r.interval_s == 60
    assert r.in_bps == 75_000_000 * 8 / 60 == 10_000_000
    assert r.out_bps == 1_000_000
    assert r.in_util == 1.0 and r.out_util == 0.1
    assert r.in_errors_ps == 1.0 and r.out_errors_ps == 0.0


def test_counter32_wrap_is_unwrapped():
    # 3 MB before the wrap point, 5 MB after it: 8 MB in 10 s on a 1 Gbit/s link
    a = sample(0.0, 1_000_000, C32 - 3_000_000, 10)
    b = sample(10.0, 1_001_000, 5_000_000, 10)
    r = compute_rates(a, b)
    assert r.in_bps == 8_000_000 * 8 / 10
    assert r.out_bps == 0
    assert counter_delta(C32 - 1, 0, 32) == 1


def test_counter32_decrease_too_large_for_the_link_is_a_reset():
    # a "wrap" would mean ~4.29 GB in 10 s on a 100 Mbit/s link: impossible -> reset, no rate
    a = sample(0.0, 1_000_000, 3_000_000_000, 10, speed=100_000_000)
    b = sample(10.0, 1_001_000, 1_000, 20, speed=100_000_000)
    r = compute_rates(a, b)
    assert r.in_bps is None
    assert r.out_bps == 8.0
    assert any("reset" in n for n in r.notes)


def test_counter64_decrease_is_a_reset_never_a_huge_rate():
    a = sample(0.0, 1_000_000, 9_000_000_000_000, 5, bits=64)
    b = sample(30.0, 1_003_000, 1_000, 10, bits=64)
    r = compute_rates(a, b)
    assert r.in_bps is None
    assert r.out_bps == 5 * 8 / 30
    assert counter_delta(10, 5, 64) is None


def test_agent_restart_uptime_going_back_gives_no_rate():
    a = sample(0.0, 5_000_000, 4_000_000_000, 4_000_000_000, ie=100)
    # agent restarted 20 s ago: uptime 2000 ticks; its counters restarted too
    b = sample(60.0, 2_000, 1_000_000, 2_000_000, ie=0)
    assert agent_restarted(5_000_000, 2_000, 60.0)
    r = compute_rates(a, b)
    assert r.in_bps is None and r.out_bps is None and r.in_errors_ps is None
    assert any("restarted" in n for n in r.notes)


def test_agent_restart_detected_even_when_uptime_grew():
    # previous uptime 10 s; agent restarted and has been up 40 s at a poll 300 s later
    assert agent_restarted(1_000, 4_000, 300.0)
    r = compute_rates(sample(0.0, 1_000, 500, 500), sample(300.0, 4_000, 900, 900))
    assert r.in_bps is None


def test_sysuptime_own_wrap_is_not_a_restart():
    # sysUpTime (32-bit ticks) wraps after 497 days; 60 s later it reads small again
    prev = C32 - 3_000
    cur = 3_000
    assert not agent_restarted(prev, cur, 60.0)
    r = compute_rates(sample(0.0, prev, 100, 100), sample(60.0, cur, 160, 220))
    assert r.in_bps == 8.0 and r.out_bps == 16.0


def test_frozen_uptime_is_not_a_restart():
    # simulators and some agents report a constant sysUpTime: rates must still work
    r = compute_rates(sample(0.0, 2_227_455_443, 0, 0), sample(30.0, 2_227_455_443, 300, 600))
    assert r.in_bps == 80.0 and r.out_bps == 160.0


def test_discontinuity_and_width_change():
    r = compute_rates(sample(0.0, 10_000, 1, 1, disc=5), sample(10.0, 11_000, 2, 2, disc=900))
    assert r.in_bps is None and "discontinuity" in r.notes[0]
    r = compute_rates(sample(0.0, 10_000, 1, 1, bits=32), sample(10.0, 11_000, 2, 2, bits=64))
    assert r.in_bps is None and "width" in r.notes[0]


def test_first_sample_and_no_speed():
    assert compute_rates(None, sample(0.0, 1, 1, 1)) is None
    r = compute_rates(sample(0.0, 1_000, 0, 0, speed=0), sample(10.0, 2_000, 1_250, 0, speed=0))
    assert r.in_bps == 1_000.0 and r.in_util is None
    # with unknown speed a 32-bit decrease is taken as one wrap
    r = compute_rates(sample(0.0, 1_000, C32 - 10, 0, speed=0), sample(10.0, 2_000, 10, 0, speed=0))
    assert r.in_bps == 20 * 8 / 10


def test_packet_rates():
    r = compute_rates(sample(0.0, 1_000, 0, 0, ip=100, op=50), sample(10.0, 2_000, 0, 0, ip=1100, op=50))
    assert r.in_pps == 100.0 and r.out_pps == 0.0


def test_never_negative_over_random_sequences():
    import random

    rnd = random.Random(7)
    prev = None
    for i in range(2000):
        bits = rnd.choice((32, 64))
        cur = CounterSample(time=i * 10.0, uptime_ticks=rnd.choice((i * 1000, rnd.randrange(0, 10**6))),
                            speed_bps=rnd.choice((0, 10**7, 10**9)), octet_bits=bits,
                            in_octets=rnd.randrange(0, 2 ** bits), out_octets=rnd.randrange(0, 2 ** bits),
                            in_errors=rnd.randrange(0, C32))
        r = compute_rates(prev, cur)
        if r is not None:
            for k, v in r.as_dict().items():
                assert v is None or v >= 0, (k, v)
            if r.in_bps is not None and cur.speed_bps and bits == 32 and prev.octet_bits == 32 \
                    and prev.in_octets > cur.in_octets:
                assert r.in_bps <= cur.speed_bps * 1.5
        prev = cur
