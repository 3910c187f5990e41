"""The comparability guard refuses to rank rows across protocols or backbone weights."""
import pytest

from metrics.protocols import PROTOCOLS
from metrics.provenance import check_comparable, rank
from core.errors import FRBenchError


def _row(method, lpips, fid, protocol="builtin", prov=None, **settings):
    s = {**PROTOCOLS[protocol].settings(), **settings}
    return {"method": method, "set": "s1", "protocol": protocol, "protocol_settings": s,
            "provenance": prov or {"lpips_vgg": "random-init:seed=0",
                                   "inception_fid": "random-init:seed=0"},
            "metrics": {"lpips": {"mean": lpips}}, "set_metrics": {"fid": fid}}


def test_rank_orders_by_direction():
    rows = [_row("a", 0.3, 10.0), _row("b", 0.1, 30.0), _row("c", 0.2, 20.0)]
    assert [r["method"] for r in rank(rows, "lpips")] == ["b", "c", "a"]
    assert [r["method"] for r in rank(rows, "fid")] == ["a", "c", "b"]
    assert [r["method"] for r in rank(rows, "lpips", higher_is_better=True)] == ["a", "c", "b"]


def test_refuses_different_protocols():
    with pytest.raises(FRBenchError, match="different protocols.*'builtin'.*'panini'"):
        rank([_row("a", 0.3, 10), _row("b", 0.1, 30, protocol="panini")], "lpips")


def test_refuses_different_backbone_provenance():
    other = {"lpips_vgg": "file:vgg16-397923af.pth@sha256:397923af8e79cdbb",
             "inception_fid": "random-init:seed=0"}
    with pytest.raises(FRBenchError, match="different 'lpips_vgg' weights.*a/s1.*b/s1"):
        check_comparable([_row("a", 0.3, 10), _row("b", 0.1, 30, prov=other)])
    seed1 = {"lpips_vgg": "random-init:seed=1", "inception_fid": "random-init:seed=0"}
    with pytest.raises(FRBenchError, match="lpips_vgg"):
        rank([_row("a", 0.3, 10), _row("b", 0.1, 30, prov=seed1)], "fid")


def test_refuses_changed_settings_but_ignores_bootstrap():
    check_comparable([_row("a", 0.3, 10), _row("b", 0.1, 30, bootstrap_samples=50)])
    with pytest.raises(FRBenchError, match="settings differ.*crop_border"):
        check_comparable([_row("a", 0.3, 10), _row("b", 0.1, 30, crop_border=4)])


def test_incomplete_rows_are_refused():
    with pytest.raises(FRBenchError, match="no protocol/provenance"):
        check_comparable([{"method": "a", "metrics": {}}])


def test_settings_are_compared_whichever_row_comes_first():
    """A row without protocol_settings first used to switch the settings check off."""
    bare = _row("a", 0.3, 10)
    del bare["protocol_settings"]
    crop0, crop4 = _row("b", 0.2, 20, crop_border=0), _row("c", 0.1, 30, crop_border=4)
    for rows in ([bare, crop0, crop4], [bare, crop4, crop0], [crop0, bare, crop4],
                 [crop4, bare, crop0]):
        with pytest.raises(FRBenchError, match="settings differ.*crop_border"):
            check_comparable(rows)
        with pytest.raises(FRBenchError, match="crop_border"):
            rank(rows, "lpips")
    # a row without settings is taken to use its protocol's registered ones (crop_border 0)
    with pytest.raises(FRBenchError, match=r"settings differ between b/s1 and a/s1 \(crop_border\)"):
        check_comparable([crop4 | {"method": "b"}, bare])
    assert [r["method"] for r in rank([bare, crop0], "lpips")] == ["b", "a"]
    # rows as read back from summary.json (lists, not tuples) compare equal to the registry's
    import json
    stored = json.loads(json.dumps(crop0))
    assert check_comparable([bare, stored, crop0]) == [bare, stored, crop0]


def test_unregistered_protocol_rows_compare_their_own_settings():
    def row(method, **s):
        return {"method": method, "set": "s", "protocol": "mine", "provenance": {},
                **({"protocol_settings": s} if s else {})}
    check_comparable([row("a"), row("b", crop_border=0), row("c", crop_border=0)])
    with pytest.raises(FRBenchError, match="crop_border"):
        check_comparable([row("a"), row("b", crop_border=0), row("c", crop_border=4)])


def test_ignored_settings_and_missing_metric_go_last():
    rows = [_row("a", 0.3, 10, bootstrap_seed=1, description="x", lineage="y"),
            _row("b", 0.1, 30)]
    del rows[1]["metrics"]["lpips"]
    assert [r["method"] for r in rank(rows, "lpips")] == ["a", "b"]
    assert [r["method"] for r in rank(rows[::-1], "lpips")] == ["a", "b"]
    with pytest.raises(FRBenchError, match="unknown metric 'nope'"):
        rank(rows, "nope")
    assert check_comparable([]) == []
