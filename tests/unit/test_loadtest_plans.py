"""The JMeter plans in jmeter/ and the launcher agree: valid XML, same properties, same data handling."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from swlab.loadtest.install import JMeterInstall
from swlab.loadtest.plans import (
    PLAN_PROPERTIES,
    WORKFLOW_PROPERTIES,
    WORKFLOWS,
    ApiEndpoint,
    LoadProfile,
    plan_path,
    plan_properties,
    read_data_file,
    write_data_file,
)
from swlab.loadtest.runner import jmeter_command, run_workflow

pytestmark = pytest.mark.unit

PLANS = {wf: plan_path(wf) for wf in WORKFLOWS}


def _tree(workflow):
    return ET.parse(PLANS[workflow]).getroot()


def _element(root, testname):
    found = [e for e in root.iter() if e.get("testname") == testname]
    assert len(found) == 1, f"expected one element named {testname!r}"
    return found[0]


def _prop(element, name):
    return element.find(f"stringProp[@name='{name}']").text or ""


@pytest.mark.parametrize("workflow", sorted(PLANS))
def test_plan_is_valid_jmeter_xml(workflow):
    root = _tree(workflow)
    assert root.tag == "jmeterTestPlan" and root.get("jmeter") == "5.5"
    assert root.find("hashTree/TestPlan") is not None


@pytest.mark.parametrize("workflow", sorted(PLANS))
def test_plan_reads_exactly_the_properties_the_launcher_passes(workflow):
    values = " ".join(e.text or "" for e in _tree(workflow).iter("stringProp"))  # not the comments
    read = set(re.findall(r"__P\((\w+)", values))
    passed = plan_properties(ApiEndpoint("h", 1), LoadProfile(), Path("d.csv"), workflow)
    assert read == set(PLAN_PROPERTIES) | set(WORKFLOW_PROPERTIES[workflow]) == set(passed)


def test_workflow_2_mode_and_polling_are_plan_properties():
    props = plan_properties(ApiEndpoint("h", 1), LoadProfile(mode="async", poll_ms=250), Path("d.csv"), "wf2")
    assert (props["mode"], props["poll_ms"]) == ("async", "250")
    assert plan_properties(ApiEndpoint("h", 1), LoadProfile(), Path("d.csv"), "wf2")["mode"] == "sync"  # default
    assert "mode" not in plan_properties(ApiEndpoint("h", 1), LoadProfile(mode="async"), Path("d.csv"), "wf1")
    with pytest.raises(ValueError, match="mode must be one of sync, async"):
        LoadProfile(mode="polling")
    with pytest.raises(ValueError, match="poll_ms"):
        LoadProfile(poll_ms=0)


def test_classify_plan_switches_on_the_mode_between_one_post_and_submit_plus_polling():
    root = _tree("wf2")
    switch = root.find(".//SwitchController")
    assert _prop(switch, "SwitchController.value") == "${__P(mode,sync)}"
    branches = _children(root, switch)
    assert [b.get("testname") for b in branches] == ["sync", "async"]  # a Switch Controller picks by name
    sync, async_ = (_children(root, b) for b in branches)
    assert [(e.tag, e.get("testname")) for e in sync] == [("HTTPSamplerProxy", "classify")]
    assert [(e.tag, e.get("testname")) for e in async_] == [("JSR223Sampler", "classify")]  # one sample, same label
    script = _prop(async_[0], "script")
    for needle in ("/classifications", "doc.status_url", "item.execution_name != name", "'CLASSIFIED', 'FAILED'"):
        assert needle in script
    assert "SampleResult.latencyEnd()" in script  # Latency = submit -> 202; elapsed = submit -> terminal
    assert _prop(async_[0], "parameters").split("|")[2:] == ["${__P(timeout_ms,35000)}", "${__P(poll_ms,500)}"]
    # compiled during setUp, not on the first arrival: the same text (the compiled-script cache key)
    assert _prop(_element(root, "compile async classify"), "script") == script
    setup = _children(root, root.find(".//SetupThreadGroup"))
    assert [e.get("testname") for e in setup] == ["compile async classify", "load data file"]


def _children(root, element):
    """The elements a JMeter element contains: those of the hashTree that follows it."""
    parents = {child: parent for parent in root.iter() for child in parent}
    siblings = list(parents[element])
    return [e for e in siblings[siblings.index(element) + 1] if e.tag != "hashTree"]


def test_launcher_passes_each_property_once_with_the_engine_flags(tmp_path):
    install = JMeterInstall(tmp_path, "5.5", Path("/usr/bin/java"), "test")
    props = plan_properties(ApiEndpoint("127.0.0.1", 8080, api_key="k"), LoadProfile(), tmp_path / "d.csv")
    cmd = jmeter_command(
        install, tmp_path / "p.jmx", props, tmp_path / "r.jtl", tmp_path / "j.log", tmp_path / "report"
    )
    for flag in ("-n", "-t", "-l", "-j", "-e", "-o"):
        assert flag in cmd
    assert "-Jjmeterengine.force.system.exit=true" in cmd
    assert "-Jjmeterengine.nongui.port=0" in cmd
    assert "-Jsample_variables=row_index,row_value,sample_id" in cmd
    assert "-Jsampleresult.timestamp.start=true" in cmd  # arrival gaps are computed from sample starts
    for name, value in props.items():
        assert cmd.count(f"-J{name}={value}") == 1


@pytest.mark.parametrize("workflow", sorted(PLANS))
def test_open_model_even_arrivals_from_rate_and_duration(workflow):
    root = _tree(workflow)
    groups = root.findall(".//OpenModelThreadGroup")
    assert len(groups) == 1
    schedule = _prop(groups[0], "OpenModelThreadGroup.schedule")
    assert "rate(${__P(rate,1)}/sec) even_arrivals(${__P(duration,180)} sec)" in schedule
    assert schedule.startswith("pause(${__P(warmup_s,1)} sec)")
    assert schedule.endswith("pause(${__P(timeout_ms,35000)} ms)")  # in-flight requests are not interrupted


@pytest.mark.parametrize("workflow", sorted(PLANS))
def test_http_request_targets_the_workflow_with_the_api_key(workflow):
    root = _tree(workflow)
    sampler = root.find(".//HTTPSamplerProxy")
    label = WORKFLOWS[workflow].label
    assert sampler.get("testname") == label
    assert _prop(sampler, "HTTPSampler.path") == "${__P(base_path,)}/" + label
    assert _prop(sampler, "HTTPSampler.method") == "POST"
    headers = {
        h.find("stringProp[@name='Header.name']").text: h.find("stringProp[@name='Header.value']").text
        for h in root.iter("elementProp")
        if h.get("elementType") == "Header"
    }
    assert headers == {"Content-Type": "application/json", "x-api-key": "${__P(api_key,)}"}


def test_plans_share_the_data_handling_and_avoid_csv_data_set():
    roots = {wf: _tree(wf) for wf in PLANS}
    for name in ("load data file", "pick data row"):
        scripts = {wf: _prop(_element(root, name), "script") for wf, root in roots.items()}
        assert len(set(scripts.values())) == 1, f"{name!r} differs between the plans"
    for wf, root in roots.items():
        assert _prop(_element(root, "pick data row"), "parameters") == WORKFLOWS[wf].field
        assert not list(root.iter("CSVDataSet"))  # apache/jmeter#5682


def test_assertions_check_the_expected_fields():
    ingest = _prop(_tree("wf1").find(".//JSR223Assertion"), "script")
    classify = _prop(_tree("wf2").find(".//JSR223Assertion"), "script")
    assert "doc.image_id" in ingest and "vars.put('sample_id'" in ingest
    for needle in ("doc.executionArn", "doc.execution_arn", "doc.image_id", "doc.status", "doc.output"):
        assert needle in classify
    assert "vars.put('sample_id'" in classify
    assert "HTTPSampleResult)) { return }" in classify  # the async sampler judges its own samples


def test_data_file_round_trip_with_commas_and_quotes(tmp_path):
    values = ["http://x/a.jpg", 'http://x/b.jpg?q=1,2&t="x"', "  padded  "]
    path = write_data_file(tmp_path / "urls.csv", values, "image_url")
    assert read_data_file(path, "image_url") == ["http://x/a.jpg", 'http://x/b.jpg?q=1,2&t="x"', "padded"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("image_id\nimg-1\n", "header 'image_url'"),
        ("", "header"),
        ("image_url\n\n  \n", "no data rows"),
    ],
)
def test_data_file_errors_are_clear(tmp_path, text, message):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_data_file(path, "image_url")


def test_write_data_file_refuses_multiline_values(tmp_path):
    with pytest.raises(ValueError):
        write_data_file(tmp_path / "d.csv", ["a\nb"], "image_id")


def test_run_workflow_checks_the_data_file_before_starting_jmeter(tmp_path):
    bad = tmp_path / "ids.csv"
    bad.write_text("image_url\nhttp://x\n")
    install = JMeterInstall(tmp_path, "5.5", Path("/nonexistent/java"), "test")
    with pytest.raises(ValueError, match="image_id"):
        run_workflow("wf2", ApiEndpoint("127.0.0.1", 1), bad, tmp_path / "run", install=install)


def test_target_from_url_and_endpoint_file(tmp_path):
    t = ApiEndpoint.from_url("https://abc.execute-api.us-east-1.amazonaws.com/prod/", "k")
    assert (t.protocol, t.host, t.port, t.base_path, t.api_key) == (
        "https",
        "abc.execute-api.us-east-1.amazonaws.com",
        443,
        "/prod",
        "k",
    )
    (tmp_path / "e.json").write_text('{"url": "http://127.0.0.1:4566/restapis/x/prod/_user_request_", "api_key": "s"}')
    t = ApiEndpoint.from_file(tmp_path / "e.json")
    assert (t.port, t.base_path, t.api_key) == (4566, "/restapis/x/prod/_user_request_", "s")
    props = plan_properties(t, LoadProfile(2, 10), tmp_path / "d.csv")
    assert props["base_path"] == "/restapis/x/prod/_user_request_" and props["rate"] == "2"
    with pytest.raises(ValueError):
        ApiEndpoint.from_url("ftp://x")


def test_load_profile_defaults_are_the_lab_default_profile():
    profile = LoadProfile()
    assert (profile.rate_per_s, profile.duration_s, profile.samples_planned) == (1.0, 180, 180)
    assert profile.mode == "sync"
    assert LoadProfile(2, 10).samples_planned == 20
